"""The frozen encoders served through ONNX Runtime: their networks, ONNX export and cache, sessions, accuracy."""
