"""Safe media download and decoding of photos and video frames into image encoder inputs."""
