//! Serves a live H.264 test stream over RTSP at `rtsp://127.0.0.1:PORT/cam` until killed: the
//! camera the reconnect tests take away and bring back. `rtsp-serve PORT` serves a moving ball
//! (640x360 at 10 fps); `rtsp-serve PORT VIDEO.mp4` serves an H.264 MP4 (a rendered scene) in
//! real time, once. Prints `ready` when it listens.
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("usage: rtsp-serve PORT [VIDEO.mp4]"))?;
    let launch = match args.next() {
        Some(video) => {
            anyhow::ensure!(std::path::Path::new(&video).is_file(), "no video at {video}");
            format!(
                "( filesrc location=\"{}\" ! qtdemux ! h264parse config-interval=-1 ! \
                   rtph264pay name=pay0 pt=96 )",
                video.replace('\\', "\\\\").replace('"', "\\\"")
            )
        }
        None => "( videotestsrc is-live=true pattern=ball ! \
                   video/x-raw,width=640,height=360,framerate=10/1 ! \
                   x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! \
                   rtph264pay name=pay0 pt=96 )"
            .to_string(),
    };
    gst::init()?;
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let mounts =
        server.mount_points().ok_or_else(|| anyhow::anyhow!("the server has no mount points"))?;
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&launch);
    factory.set_shared(true);
    mounts.add_factory("/cam", factory);
    let _source = server.attach(None)?;
    println!("ready");
    main_loop.run();
    Ok(())
}
