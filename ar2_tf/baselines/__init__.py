"""The methods AR2 is compared with, as Keras trainers: AugMix."""
