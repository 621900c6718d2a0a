"""Pure models: ALS recommendations, online churn, segments, CLV, evaluation, registry."""
