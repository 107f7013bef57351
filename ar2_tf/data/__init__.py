"""Where images come from and how they reach the model: sources, file formats, tf.data pipelines, preprocessing, static shards."""
