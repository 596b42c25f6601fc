//! Capture: a GStreamer pipeline from the camera (RTSP, V4L2) or a file to RGB frames.
//!
//! ```text
//!  rtspsrc / v4l2src / filesrc ─► decodebin [parser ─► (keyframe probe) decoder] ─► identity
//!      (rate probe) ─► videoconvert ─► videoscale ─► video/x-raw,format=RGB,width=W ─► appsink
//! ```
//! `decodebin` picks a hardware decoder where the box has one. While the motion gate says the
//! scene is quiet, a probe in front of the decoder lets only keyframes through
//! ([`keyframes`]: decoding is most of what an empty road costs). After the decoder, the rate
//! probe counts the decoded frames and drops those beyond `max_fps`, or beyond `idle_fps` while
//! quiet, before any colour conversion; the rest are converted and scaled once, to the width
//! the engine needs. Both probes act on the next frame, with no caps renegotiation (changing a
//! `videorate`'s rate lost about a second of frames when a vehicle arrived, and `videorate`
//! holds a frame back, which the keyframe rendezvous cannot wait for). The analyser reports its
//! verdict on each frame with [`Capture::judged`]. Live sources hand over only the newest frame
//! (`max-buffers=1 drop=true`). File replays decode every frame and never drop. The pipeline's
//! whole lifecycle is this module's [`Capture`]: built in `open`, set to `Null` on drop.
pub mod keyframes;

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
    /// Keyframe-only decoding while quiet (`None`: configured off).
    quiet_decoding: Option<std::sync::Arc<keyframes::QuietDecoding>>,
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
        let desc = format!(
            "{src} ! identity name=rate ! videoconvert ! videoscale ! \
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
        // The rate limits drop on the push side (dropping inside a sink pad's chain makes
        // GStreamer 1.22 log a critical per frame), still before any colour conversion.
        let idle_every_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let every = idle_every_ms.clone();
        let max_every = if cfg.max_fps == 0 { 0 } else { 1000 / u64::from(cfg.max_fps) };
        let quiet_decoding = cfg.keyframes_when_quiet.then(|| {
            // Files are replayed as fast as they decode, and the analyser may be busy with a
            // pass: wait longer for a verdict there than on a live camera.
            let wait = if live { 1000 } else { 5000 };
            std::sync::Arc::new(keyframes::QuietDecoding::new(Duration::from_millis(wait)))
        });
        let passed_over = quiet_decoding.clone();
        // The pts of the last frame let through (u64::MAX: none yet).
        let last_passed = std::sync::atomic::AtomicU64::new(u64::MAX);
        pad("src")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            use std::sync::atomic::Ordering::Relaxed;
            let Some(pts) = info.buffer().and_then(|b| b.pts()).map(|t| t.mseconds()) else {
                return gst::PadProbeReturn::Ok;
            };
            let every = match every.load(Relaxed) {
                0 => max_every,
                idle => idle.max(max_every),
            };
            let last = last_passed.load(Relaxed);
            // Frame times are whole milliseconds: allow one of rounding.
            if every > 0 && last != u64::MAX && pts >= last && pts - last + 1 < every {
                if let Some(q) = &passed_over {
                    q.passed_over(pts);
                }
                return gst::PadProbeReturn::Drop;
            }
            last_passed.store(pts, Relaxed);
            gst::PadProbeReturn::Ok
        });
        if let Some(q) = &quiet_decoding {
            let q = q.clone();
            pipeline.connect_deep_element_added(move |_, _, element| {
                let is_video_decoder = element.factory().is_some_and(|f| {
                    let klass = f.klass();
                    klass.contains("Decoder") && klass.contains("Video")
                });
                if !is_video_decoder {
                    return;
                }
                // Frame threading holds decoded frames back, which the rendezvous cannot wait
                // for; one frame at a time is plenty when most frames are skipped.
                if element.find_property("thread-type").is_some() {
                    element.set_property_from_str("thread-type", "slice");
                }
                let Some(sink) = element.static_pad("sink") else { return };
                // The probe sits on the pad that feeds the decoder: a sink pad's probe that
                // drops makes GStreamer 1.22 log a critical per buffer.
                let q = q.clone();
                sink.connect_linked(move |_, feeder| {
                    let q = q.clone();
                    feeder.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                        let Some(buffer) = info.buffer() else { return gst::PadProbeReturn::Ok };
                        let flags = buffer.flags();
                        // A keyframe may carry the stream's headers in band (HEADER set);
                        // a header-only buffer without a picture is never skipped.
                        let keyframe = !flags.contains(gst::BufferFlags::DELTA_UNIT);
                        if !keyframe && flags.contains(gst::BufferFlags::HEADER) {
                            return gst::PadProbeReturn::Ok;
                        }
                        if q.admit(keyframe, buffer.pts().map(|t| t.mseconds())) {
                            gst::PadProbeReturn::Ok
                        } else {
                            gst::PadProbeReturn::Drop
                        }
                    });
                });
            });
        }
        let cap = Capture {
            pipeline,
            sink,
            bus,
            frames: 0,
            decoded,
            idle_every_ms,
            quiet_decoding,
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

    /// The analyser's verdict after the frame at `pts_ms`: while the scene is quiet
    /// (`idle_fps` > 0) deliver at most `idle_fps` frames per second and decode only keyframes;
    /// otherwise every frame up to `max_fps`.
    pub fn judged(&self, pts_ms: Option<i64>, idle_fps: u32) {
        let every = if idle_fps == 0 { 0 } else { 1000 / u64::from(idle_fps) };
        self.idle_every_ms.store(every, std::sync::atomic::Ordering::Relaxed);
        if let Some(q) = &self.quiet_decoding {
            q.judged(pts_ms.and_then(|p| u64::try_from(p).ok()), idle_fps > 0);
        }
    }

    /// Compressed frames skipped before the decoder (keyframe-only decoding while quiet).
    pub fn skipped(&self) -> u64 {
        self.quiet_decoding.as_ref().map_or(0, |q| q.skipped())
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
        if let Some(q) = &self.quiet_decoding {
            q.close();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
