//! Dataset pipelines (the tf.data analogue), record formats and dataset fetching (in progress: see the data-pipeline issue).
