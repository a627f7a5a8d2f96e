"""Audio features exactly as the reference computes them (python_speech_features defaults)."""
from __future__ import annotations

import numpy as np
import python_speech_features

SAMPLE_RATE = 16000


def mfcc(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(13, n) MFCCs of mono samples (int16 as the reference reads them), one column per 10 ms.

    The reference feeds the samples unchanged to `python_speech_features.mfcc` and
    transposes (`zip(*mfcc(audio, sample_rate))`); c0 is the log frame energy.
    """
    return np.asarray(python_speech_features.mfcc(audio, sample_rate)).T
