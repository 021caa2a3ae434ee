"""Examples for tune_vqvae. This file makes `examples.<module>` importable from a clone's root,
so `--loss examples.charbonnier:factory` works there without installing anything."""
