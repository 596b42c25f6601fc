//! Encodes rendered frames into an H.264 MP4 with GStreamer (appsrc → x264enc → mp4mux).
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use image::RgbImage;
use std::path::Path;

/// How the frames are encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoding {
    pub fps: u32,
    /// A keyframe at least every this many frames.
    pub keyframe_every: u32,
    /// Constant bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// x264's speed preset (`ultrafast` … `medium`).
    pub preset: &'static str,
    /// B-frames (IP cameras mostly send none).
    pub bframes: u32,
    /// x264's `zerolatency` tuning (no look-ahead): quicker, as a test wants it.
    pub zerolatency: bool,
}

impl Encoding {
    /// Fast to make, a keyframe every second: for tests.
    pub fn quick(fps: u32) -> Encoding {
        Encoding {
            fps,
            keyframe_every: fps,
            bitrate_kbps: 2048,
            preset: "ultrafast",
            bframes: 0,
            zerolatency: true,
        }
    }
}

/// Writes `frames` (all the same size) at `fps` to `path`, quickly (see [`Encoding::quick`]).
pub fn write_mp4(
    path: &Path,
    fps: u32,
    frames: impl Iterator<Item = RgbImage>,
) -> anyhow::Result<()> {
    encode_mp4(path, &Encoding::quick(fps), frames)
}

/// Writes `frames` (all the same size) to `path` as `enc` says.
pub fn encode_mp4(
    path: &Path,
    enc: &Encoding,
    frames: impl Iterator<Item = RgbImage>,
) -> anyhow::Result<()> {
    gst::init()?;
    let mut frames = frames.peekable();
    let first = frames.peek().ok_or_else(|| anyhow::anyhow!("no frames"))?;
    let (w, h) = first.dimensions();
    let Encoding { fps, keyframe_every, bitrate_kbps, preset, bframes, zerolatency } = enc.clone();
    let tune = if zerolatency { "tune=zerolatency " } else { "" };
    let desc = format!(
        "appsrc name=src format=time is-live=false block=true \
           caps=video/x-raw,format=RGB,width={w},height={h},framerate={fps}/1 ! \
         videoconvert ! video/x-raw,format=I420 ! \
         x264enc speed-preset={preset} {tune}pass=cbr bitrate={bitrate_kbps} \
           key-int-max={keyframe_every} bframes={bframes} ! \
         h264parse ! mp4mux ! filesink location=\"{}\"",
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
