"""Offline re-scoring of whole video datasets (YouTube Faces or any folder of videos / frames)."""

from .items import VideoItem, find_items
from .run import rescore
from .worker import RescoreSettings, RescoreWorker

__all__ = ["RescoreSettings", "RescoreWorker", "VideoItem", "find_items", "rescore"]
