"""The fusion networks (plain nn.Modules) and their loaders: what the Triton models import."""
