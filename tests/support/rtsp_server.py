"""A real RTSP server for the `vidfiqa watch` tests: GStreamer's gst-rtsp-server serving an MP4's
H.264 stream at live speed, as rtsp://127.0.0.1:PORT/cam.

Run with the system Python that has the GStreamer bindings (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,bad}):

    /usr/bin/python3 tests/support/rtsp_server.py CLIP.mp4 PORT [MAIN.mp4]

It prints "ready" once it listens.  The clip is served from the start for every new session
(`shared` off), so a client that reconnects gets a fresh stream; tests make the clip long enough.
With MAIN.mp4 it is a two-stream camera: CLIP at /cam (the substream) and MAIN at /main (the main
stream), both started when /cam is asked for; their RTP sessions send RTCP sender reports.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def factory_of(clip: str) -> "GstRtspServer.RTSPMediaFactory":
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{clip}" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    factory.set_shared(False)
    return factory


def main() -> None:
    clip, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    server.get_mount_points().add_factory("/cam", factory_of(clip))
    if len(sys.argv) > 3:
        server.get_mount_points().add_factory("/main", factory_of(sys.argv[3]))
    if server.attach(None) == 0:
        print(f"cannot listen on port {port}", flush=True)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
