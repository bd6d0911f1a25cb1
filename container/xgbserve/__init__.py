"""SageMaker-compatible XGBoost inference server: plain decode/predict/encode functions under Flask."""
