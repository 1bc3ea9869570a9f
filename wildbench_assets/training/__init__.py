"""Training and inference of the benchmark's models (ultralytics, torchvision); no Dagster import."""
