//! Capture: a GStreamer pipeline from the camera (RTSP, V4L2) or a file to RGB frames.
//!
//! ```text
//!  rtspsrc / v4l2src / filesrc ─► decodebin ─► videorate (max_fps, drop only) ─► videoconvert
//!      ─► videoscale ─► video/x-raw,format=RGB,width=W,pixel-aspect-ratio=1/1 ─► appsink
//! ```
//! `decodebin` picks a hardware decoder where the box has one. Frames beyond `max_fps` are
//! dropped right after decoding, so they never cost a colour conversion; the rest are converted
//! and scaled once, to the width the engine needs. A probe in front of `videorate` counts the
//! decoded frames and, while the motion gate says the scene is quiet, lets through only one
//! frame per idle interval ([`Capture::set_idle_fps`]); the change takes effect on the next
//! frame, with no caps renegotiation (changing `videorate`'s own rate lost about a second of
//! frames when a vehicle arrived, and with them reads). Live sources hand over only the newest frame
//! (`max-buffers=1 drop=true`); the frames GStreamer dropped are counted from buffer offsets.
//! File replays decode every frame and never drop. The pipeline's whole lifecycle is this
//! module's [`Capture`]: built in `open`, set to `Null` on drop.
use crate::config::{CaptureConfig, Pacing};
use crate::engine::RgbImage;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("video file not found: {0}")]
    FileNotFound(PathBuf),
    #[error("unsupported capture source {0:?}: use rtsp://, file:// or v4l2://")]
    BadSource(String),
    #[error("cannot build the capture pipeline: {0}")]
    Pipeline(String),
    #[error("stream error from {element}: {message}")]
    Stream { element: String, message: String },
    #[error(
        "no frame and no end for {0:?}: a damaged or incomplete file, or a camera that stopped sending"
    )]
    Stalled(Duration),
}

/// One decoded frame.
#[derive(Debug)]
pub struct Frame {
    pub image: RgbImage,
    /// Presentation time in the stream, milliseconds.
    pub pts_ms: Option<i64>,
}

/// What the pipeline produced next.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    /// Nothing within the timeout (a live stream may be stalled).
    Idle,
    EndOfStream,
}

pub struct Capture {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    bus: gst::Bus,
    frames: u64,
    decoded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// While quiet, at most one frame per this many ms passes the probe (0: all).
    idle_every_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// How long without a frame or an end counts as a damaged file or a silent camera.
    stall: Duration,
    last_progress: std::time::Instant,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("frames", &self.frames).finish_non_exhaustive()
    }
}

fn source_description(cfg: &CaptureConfig) -> Result<String, CaptureError> {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let s = cfg.source.as_str();
    if let Some(url) =
        s.strip_prefix("rtsp://").map(|_| s).or_else(|| s.strip_prefix("rtsps://").map(|_| s))
    {
        return Ok(format!(
            "rtspsrc location={} latency=200 protocols=tcp ! decodebin",
            quote(url)
        ));
    }
    if let Some(dev) = s.strip_prefix("v4l2://") {
        return Ok(format!("v4l2src device={} ! decodebin", quote(dev)));
    }
    if cfg.is_file() {
        let path = PathBuf::from(s.strip_prefix("file://").unwrap_or(s));
        if !path.is_file() {
            return Err(CaptureError::FileNotFound(path));
        }
        let p = path.to_str().ok_or_else(|| CaptureError::BadSource(s.to_string()))?;
        return Ok(format!("filesrc location={} ! decodebin", quote(p)));
    }
    Err(CaptureError::BadSource(s.to_string()))
}

impl Capture {
    /// Builds and starts the pipeline.
    pub fn open(cfg: &CaptureConfig) -> Result<Capture, CaptureError> {
        gst::init().map_err(|e| CaptureError::Init(e.to_string()))?;
        let src = source_description(cfg)?;
        let live = cfg.effective_pacing() == Pacing::Live;
        let rate = match cfg.max_fps {
            0 => "identity name=rate".to_string(),
            fps => format!("videorate name=rate drop-only=true max-rate={fps}"),
        };
        let desc = format!(
            "{src} ! {rate} ! videoconvert ! videoscale ! \
             video/x-raw,format=RGB,width={w},pixel-aspect-ratio=1/1 ! \
             appsink name=sink sync=false max-buffers={mb} drop={drop} enable-last-sample=false",
            w = cfg.width,
            mb = if live { 1 } else { 2 },
            drop = live,
        );
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| CaptureError::Pipeline(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| CaptureError::Pipeline("not a pipeline".into()))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| CaptureError::Pipeline("no appsink".into()))?;
        let bus = pipeline.bus().ok_or_else(|| CaptureError::Pipeline("no bus".into()))?;
        let decoded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let rate = pipeline
            .by_name("rate")
            .ok_or_else(|| CaptureError::Pipeline("no rate element".into()))?;
        let pad = |name: &str| {
            rate.static_pad(name)
                .ok_or_else(|| CaptureError::Pipeline(format!("rate element without {name} pad")))
        };
        let counter = decoded.clone();
        pad("sink")?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
        // The idle limit drops on the push side (dropping inside a sink pad's chain makes
        // GStreamer 1.22 log a critical per frame), still before any colour conversion.
        let idle_every_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let every = idle_every_ms.clone();
        // The pts of the last frame let through (u64::MAX: none yet).
        let last_passed = std::sync::atomic::AtomicU64::new(u64::MAX);
        pad("src")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            use std::sync::atomic::Ordering::Relaxed;
            let Some(pts) = info.buffer().and_then(|b| b.pts()).map(|t| t.mseconds()) else {
                return gst::PadProbeReturn::Ok;
            };
            let every = every.load(Relaxed);
            let last = last_passed.load(Relaxed);
            if every > 0 && last != u64::MAX && pts >= last && pts - last < every {
                return gst::PadProbeReturn::Drop;
            }
            last_passed.store(pts, Relaxed);
            gst::PadProbeReturn::Ok
        });
        let cap = Capture {
            pipeline,
            sink,
            bus,
            frames: 0,
            decoded,
            idle_every_ms,
            stall: Duration::from_millis(cfg.stall_ms.max(1)),
            last_progress: std::time::Instant::now(),
        };
        cap.pipeline.set_state(gst::State::Playing).map_err(|_| {
            cap.bus_error().unwrap_or_else(|| CaptureError::Pipeline("cannot start".into()))
        })?;
        Ok(cap)
    }

    /// The first error waiting on the bus, as a typed error.
    fn bus_error(&self) -> Option<CaptureError> {
        while let Some(msg) = self.bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                return Some(CaptureError::Stream {
                    element: e.src().map(|s| s.path_string().to_string()).unwrap_or_default(),
                    message: format!(
                        "{}{}",
                        e.error(),
                        e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                    ),
                });
            }
        }
        None
    }

    /// Waits up to `timeout` for the next frame.
    pub fn next(&mut self, timeout: Duration) -> Result<Next, CaptureError> {
        if let Some(e) = self.bus_error() {
            return Err(e);
        }
        let Some(sample) =
            self.sink.try_pull_sample(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64))
        else {
            if let Some(e) = self.bus_error() {
                return Err(e);
            }
            if self.sink.is_eos() {
                return Ok(Next::EndOfStream);
            }
            // No frame and no end for this long: a file that cannot be played (an MP4 cut
            // before its index may make the demuxer wait for ever), or a camera that went
            // silent without closing its stream.
            if self.last_progress.elapsed() > self.stall {
                return Err(CaptureError::Stalled(self.stall));
            }
            return Ok(Next::Idle);
        };
        self.last_progress = std::time::Instant::now();
        let caps =
            sample.caps().ok_or_else(|| CaptureError::Pipeline("sample without caps".into()))?;
        let info = gstreamer_video::VideoInfo::from_caps(caps)
            .map_err(|e| CaptureError::Pipeline(format!("bad caps: {e}")))?;
        let buffer = sample
            .buffer()
            .ok_or_else(|| CaptureError::Pipeline("sample without buffer".into()))?;
        let map = buffer.map_readable().map_err(|e| CaptureError::Pipeline(e.to_string()))?;
        let (w, h) = (info.width(), info.height());
        let stride = info.stride()[0] as usize;
        let row = w as usize * 3;
        let mut data = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            let start = y * stride;
            let line = map
                .get(start..start + row)
                .ok_or_else(|| CaptureError::Pipeline("short frame".into()))?;
            data.extend_from_slice(line);
        }
        let image = RgbImage::from_raw(w, h, data)
            .ok_or_else(|| CaptureError::Pipeline("frame size".into()))?;
        self.frames += 1;
        Ok(Next::Frame(Frame { image, pts_ms: buffer.pts().map(|t| t.mseconds() as i64) }))
    }

    /// While the scene is quiet, deliver at most `fps` frames per second (0: all of them).
    pub fn set_idle_fps(&self, fps: u32) {
        let every = if fps == 0 { 0 } else { 1000 / u64::from(fps) };
        self.idle_every_ms.store(every, std::sync::atomic::Ordering::Relaxed);
    }

    /// Frames handed over so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames the decoder produced so far (handed over or dropped).
    pub fn decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
