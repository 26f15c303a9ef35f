//! Image ops, augmentation and the model zoo (in progress: see the image-ops and model-zoo issues).
