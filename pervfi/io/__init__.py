"""Reading, writing and analysing frames and videos: the parts of the streaming pipeline."""
