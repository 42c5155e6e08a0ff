"""Learned-model building blocks shared by plugins: the encoder-decoder prior."""

from salplug.models._detector import EncoderDecoderPrior

__all__ = ["EncoderDecoderPrior"]
