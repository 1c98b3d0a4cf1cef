"""Films: colorize a video (or a folder of numbered frames) into a video whose colours hold still.

- io: PyAV decoding and encoding, frame folders, the final mux with the audio copied;
- cuts: scene cuts by a jump in the L histogram;
- flow: Farneback flow on L, warping, the forward-backward occlusion test (OpenCV);
- stabilise: none / ema / flow temporal stabilisation;
- pipeline: batched prediction through the Colorizer, cuts and stabilisation, frame by frame;
- chunks: resumable chunks beside the output; runner: one film end to end;
- metrics: the warping error of a film, and of its colour source;
- cli: the video side of the colorize command.

PyAV and OpenCV are the ``video`` extra, imported only when a film is read (io.require says how to
install them); importing this package needs neither.
"""

from colorization.inference.video.io import VIDEO_SUFFIXES, is_video_file
from colorization.inference.video.metrics import warping_error
from colorization.inference.video.runner import DEFAULT_MODE, VideoOptions, colorize_video

__all__ = [
    "DEFAULT_MODE",
    "VIDEO_SUFFIXES",
    "VideoOptions",
    "colorize_video",
    "is_video_file",
    "warping_error",
]
