"""YouTube Faces: frame folders with their face boxes, and the 5,000-pair verification protocol."""

from .dataset import YtfFrame, YtfReport, YtfVideo, face_box, read_ytf
from .protocol import YtfPair, YtfProtocol, read_protocol

__all__ = ["YtfFrame", "YtfVideo", "YtfReport", "read_ytf", "face_box", "YtfPair", "YtfProtocol", "read_protocol"]
