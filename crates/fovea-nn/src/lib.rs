//! Keras-style layers, models, optimizers, losses, metrics and the training loop (in progress: see the Keras-contract issue).
