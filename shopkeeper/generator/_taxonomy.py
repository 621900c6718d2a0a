"""The static shape of the synthetic shop: departments, leaf categories, brands, complements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BRANDS", "COMPLEMENTS", "COUNTRIES", "DEPARTMENTS", "LEAVES", "Leaf"]


@dataclass(frozen=True, slots=True)
class Leaf:
    """One leaf category.

    Attributes:
        path: Slash path, e.g. ``"Home/Kitchen/Coffee Machines"``.
        median_price: Median unit price in major units.
        sigma: Log-normal spread of prices inside the category.
        cycle_days: Usual repurchase cycle for consumables, 0 for durable goods.
    """

    path: str
    median_price: float
    sigma: float
    cycle_days: int = 0

    @property
    def department(self) -> str:
        """The first segment of the path."""
        return self.path.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The last segment of the path."""
        return self.path.rsplit("/", 1)[-1]


LEAVES: Final[tuple[Leaf, ...]] = (
    Leaf("Grocery/Coffee", 9.0, 0.35, 30),
    Leaf("Grocery/Tea", 5.0, 0.35, 45),
    Leaf("Grocery/Snacks", 3.0, 0.4, 14),
    Leaf("Grocery/Pasta & Rice", 2.5, 0.35, 30),
    Leaf("Grocery/Breakfast", 4.0, 0.35, 21),
    Leaf("Grocery/Beverages", 3.0, 0.4, 14),
    Leaf("Grocery/Pet Food", 25.0, 0.5, 30),
    Leaf("Grocery/Baby Food", 6.0, 0.3, 14),
    Leaf("Home/Kitchen/Coffee Machines", 220.0, 0.6),
    Leaf("Home/Kitchen/Cookware", 60.0, 0.5),
    Leaf("Home/Kitchen/Knives", 45.0, 0.5),
    Leaf("Home/Kitchen/Small Appliances", 70.0, 0.5),
    Leaf("Home/Cleaning/Detergent", 8.0, 0.3, 45),
    Leaf("Home/Cleaning/Tools", 20.0, 0.5),
    Leaf("Home/Bedding", 55.0, 0.5),
    Leaf("Home/Lighting", 40.0, 0.6),
    Leaf("Home/Furniture", 250.0, 0.7),
    Leaf("Home/Decor", 25.0, 0.6),
    Leaf("Home/Storage", 20.0, 0.5),
    Leaf("Electronics/Phones", 450.0, 0.6),
    Leaf("Electronics/Phone Accessories/Cases", 18.0, 0.4),
    Leaf("Electronics/Phone Accessories/Chargers", 22.0, 0.4),
    Leaf("Electronics/Headphones", 80.0, 0.8),
    Leaf("Electronics/Computers/Laptops", 900.0, 0.5),
    Leaf("Electronics/Computers/Laptop Bags", 40.0, 0.4),
    Leaf("Electronics/Computers/Printers", 150.0, 0.5),
    Leaf("Electronics/Computers/Printer Ink", 30.0, 0.3, 60),
    Leaf("Electronics/Tablets", 400.0, 0.5),
    Leaf("Electronics/TV", 600.0, 0.6),
    Leaf("Electronics/Cameras", 550.0, 0.6),
    Leaf("Electronics/Camera Accessories/Memory Cards", 25.0, 0.5),
    Leaf("Electronics/Gaming/Consoles", 400.0, 0.3),
    Leaf("Electronics/Gaming/Video Games", 55.0, 0.3),
    Leaf("Electronics/Smart Home", 60.0, 0.6),
    Leaf("Electronics/Batteries", 10.0, 0.3, 60),
    Leaf("Fashion/Women/Dresses", 60.0, 0.5),
    Leaf("Fashion/Women/Shoes", 80.0, 0.5),
    Leaf("Fashion/Women/Tops", 30.0, 0.5),
    Leaf("Fashion/Men/Shirts", 40.0, 0.5),
    Leaf("Fashion/Men/Shoes", 90.0, 0.5),
    Leaf("Fashion/Men/Trousers", 55.0, 0.5),
    Leaf("Fashion/Accessories/Bags", 70.0, 0.7),
    Leaf("Fashion/Accessories/Watches", 150.0, 0.8),
    Leaf("Fashion/Kids/Clothing", 20.0, 0.5),
    Leaf("Fashion/Socks & Underwear", 12.0, 0.4, 90),
    Leaf("Beauty/Skincare", 25.0, 0.6, 60),
    Leaf("Beauty/Makeup", 18.0, 0.6),
    Leaf("Beauty/Haircare/Shampoo", 7.0, 0.4, 30),
    Leaf("Beauty/Fragrance", 60.0, 0.5),
    Leaf("Beauty/Shaving/Razors", 25.0, 0.5),
    Leaf("Beauty/Shaving/Razor Blades", 15.0, 0.3, 28),
    Leaf("Beauty/Oral Care", 5.0, 0.5, 60),
    Leaf("Beauty/Health/Vitamins", 14.0, 0.4, 30),
    Leaf("Sports/Running/Shoes", 110.0, 0.4),
    Leaf("Sports/Running/Apparel", 40.0, 0.4),
    Leaf("Sports/Fitness/Equipment", 60.0, 0.8),
    Leaf("Sports/Fitness/Yoga", 30.0, 0.5),
    Leaf("Sports/Cycling/Bikes", 700.0, 0.6),
    Leaf("Sports/Cycling/Accessories", 35.0, 0.6),
    Leaf("Sports/Outdoor/Tents", 180.0, 0.6),
    Leaf("Sports/Outdoor/Camping Gear", 40.0, 0.6),
    Leaf("Sports/Nutrition/Protein", 30.0, 0.3, 30),
    Leaf("Sports/Nutrition/Energy Bars", 2.5, 0.3, 14),
    Leaf("Sports/Team Sports", 30.0, 0.5),
)

DEPARTMENTS: Final[tuple[str, ...]] = tuple(dict.fromkeys(leaf.department for leaf in LEAVES))

BRANDS: Final[dict[str, tuple[str, ...]]] = {
    "Grocery": (
        "Aurora Farms",
        "Bellacrema",
        "Nordkorn",
        "Verde Valle",
        "Casa Sol",
        "Miller & Co",
        "Petit Jardin",
        "Hafenrost",
        "Golden Hive",
        "Alpenmilch",
    ),
    "Home": (
        "Kuchenwerk",
        "Maison Lumen",
        "Casaluce",
        "Nordhem",
        "Brightwell",
        "Ferro",
        "Linnea",
        "Oakhaven",
        "Pulito",
        "Vetro",
    ),
    "Electronics": (
        "Voltix",
        "Nimbus",
        "Arcadia",
        "Zentro",
        "Helix",
        "Quanta",
        "Lumio",
        "Orbit",
        "Pixelle",
        "Stratos",
    ),
    "Fashion": (
        "Atelier Nove",
        "Urban Fox",
        "Blue Harbour",
        "Maren",
        "Sartoria",
        "Lumen & Lace",
        "Kite",
        "Northline",
        "Velours",
        "Tidewear",
    ),
    "Beauty": (
        "Belle Fleur",
        "Dermalis",
        "Purea",
        "Sensa",
        "Glowry",
        "Keen Edge",
        "Oro Bianco",
        "Vitalia",
        "Menthe",
        "Silka",
    ),
    "Sports": (
        "Stride",
        "Peakform",
        "Velocita",
        "Trailmark",
        "Aqualis",
        "Ironleaf",
        "Summit",
        "Pulse",
        "Cadence",
        "Basecamp",
    ),
}

# (antecedent leaf, complement leaf): buying the first makes the second likely.
COMPLEMENTS: Final[tuple[tuple[str, str], ...]] = (
    ("Home/Kitchen/Coffee Machines", "Grocery/Coffee"),
    ("Electronics/Phones", "Electronics/Phone Accessories/Cases"),
    ("Electronics/Phones", "Electronics/Phone Accessories/Chargers"),
    ("Electronics/Computers/Laptops", "Electronics/Computers/Laptop Bags"),
    ("Electronics/Computers/Printers", "Electronics/Computers/Printer Ink"),
    ("Electronics/Cameras", "Electronics/Camera Accessories/Memory Cards"),
    ("Electronics/Gaming/Consoles", "Electronics/Gaming/Video Games"),
    ("Electronics/Tablets", "Electronics/Phone Accessories/Chargers"),
    ("Electronics/Smart Home", "Electronics/Batteries"),
    ("Beauty/Shaving/Razors", "Beauty/Shaving/Razor Blades"),
    ("Sports/Cycling/Bikes", "Sports/Cycling/Accessories"),
    ("Sports/Outdoor/Tents", "Sports/Outdoor/Camping Gear"),
    ("Sports/Running/Shoes", "Sports/Running/Apparel"),
    ("Sports/Fitness/Equipment", "Sports/Nutrition/Protein"),
    ("Fashion/Women/Dresses", "Fashion/Women/Shoes"),
    ("Fashion/Men/Shirts", "Fashion/Men/Trousers"),
    ("Home/Kitchen/Cookware", "Home/Kitchen/Knives"),
    ("Home/Bedding", "Home/Decor"),
)

# (country, IANA time zone, language, UTC offset in hours used for the daily rhythm, weight)
COUNTRIES: Final[tuple[tuple[str, str, str, int, float], ...]] = (
    ("DE", "Europe/Berlin", "de-DE", 1, 0.26),
    ("FR", "Europe/Paris", "fr-FR", 1, 0.2),
    ("ES", "Europe/Madrid", "es-ES", 1, 0.13),
    ("IT", "Europe/Rome", "it-IT", 1, 0.13),
    ("NL", "Europe/Amsterdam", "nl-NL", 1, 0.08),
    ("BE", "Europe/Brussels", "fr-BE", 1, 0.05),
    ("AT", "Europe/Vienna", "de-AT", 1, 0.05),
    ("PT", "Europe/Lisbon", "pt-PT", 0, 0.04),
    ("IE", "Europe/Dublin", "en-IE", 0, 0.03),
    ("FI", "Europe/Helsinki", "fi-FI", 2, 0.03),
)
