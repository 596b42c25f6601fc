//! Encodes rendered frames into an H.264 MP4 with GStreamer (appsrc → x264enc → mp4mux).
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use image::RgbImage;
use std::path::Path;

/// Writes `frames` (all the same size) at `fps` to `path`.
pub fn write_mp4(
    path: &Path,
    fps: u32,
    frames: impl Iterator<Item = RgbImage>,
) -> anyhow::Result<()> {
    gst::init()?;
    let mut frames = frames.peekable();
    let first = frames.peek().ok_or_else(|| anyhow::anyhow!("no frames"))?;
    let (w, h) = first.dimensions();
    let desc = format!(
        "appsrc name=src format=time is-live=false block=true \
           caps=video/x-raw,format=RGB,width={w},height={h},framerate={fps}/1 ! \
         videoconvert ! video/x-raw,format=I420 ! \
         x264enc speed-preset=ultrafast tune=zerolatency key-int-max={fps} ! h264parse ! \
         mp4mux ! filesink location=\"{}\"",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| anyhow::anyhow!("no appsrc"))?;
    pipeline.set_state(gst::State::Playing)?;
    let frame_ns = 1_000_000_000u64 / u64::from(fps);
    for (i, f) in frames.enumerate() {
        let mut buf = gst::Buffer::from_mut_slice(f.into_raw());
        {
            let b = buf.get_mut().ok_or_else(|| anyhow::anyhow!("buffer"))?;
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
        }
        src.push_buffer(buf)?;
    }
    src.end_of_stream()?;
    let bus = pipeline.bus().ok_or_else(|| anyhow::anyhow!("no bus"))?;
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(60)) else {
            break Err(anyhow::anyhow!("encoder timed out"));
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => break Err(anyhow::anyhow!("encoder: {}", e.error())),
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null)?;
    result
}
