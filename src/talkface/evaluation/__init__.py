"""The parts of the evaluate stage (talkface.evaluate): generate (G_L over a clip, with the model-input contract),
score (every metric of one clip) and write (summaries and output files)."""
