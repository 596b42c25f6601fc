//! Serves a live H.264 test stream (a moving ball, 640x360 at 10 fps) over RTSP at
//! `rtsp://127.0.0.1:PORT/cam` until killed: the camera the reconnect tests take away and bring
//! back. Prints `ready` when it listens.
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("usage: rtsp-serve PORT"))?;
    gst::init()?;
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let mounts =
        server.mount_points().ok_or_else(|| anyhow::anyhow!("the server has no mount points"))?;
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(
        "( videotestsrc is-live=true pattern=ball ! \
           video/x-raw,width=640,height=360,framerate=10/1 ! \
           x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! \
           rtph264pay name=pay0 pt=96 )",
    );
    factory.set_shared(true);
    mounts.add_factory("/cam", factory);
    let _source = server.attach(None)?;
    println!("ready");
    main_loop.run();
    Ok(())
}
