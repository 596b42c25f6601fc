//! `photo-video --out VIDEO.mp4 DIR...`: turns folders of vehicle photos in the OpenALPR
//! benchmark layout (`IMAGE.jpg` beside `IMAGE.txt` holding `image x y w h PLATE`) into a video
//! as a roadside camera would record them, and writes the passes it holds to `VIDEO.csv` (or
//! `--expected FILE`) for `bench-capture --expected`.
use appliance::engine::plate::normalise_text;
use clap::Parser;
use e2e_tests::photo_video::{Photo, PhotoCar, PhotoPlan, expected_csv, make_photo_video};
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Args {
    /// Output MP4 file.
    #[arg(long)]
    out: PathBuf,
    /// Where the list of passes goes (default: beside the video, `.csv`).
    #[arg(long)]
    expected: Option<PathBuf>,
    /// Milliseconds each car is in view.
    #[arg(long, default_value_t = 2000)]
    hold_ms: u32,
    /// Milliseconds of empty road between cars.
    #[arg(long, default_value_t = 1000)]
    gap_ms: u32,
    #[arg(long, default_value_t = 15)]
    fps: u32,
    /// Seconds between keyframes.
    #[arg(long, default_value_t = 2.0)]
    keyframe_s: f32,
    #[arg(long, default_value_t = 4000)]
    bitrate_kbps: u32,
    #[arg(long, default_value_t = 1920)]
    width: u32,
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// Folders of photos with their ground truth.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

/// The photos of a folder with the plate each carries, in file-name order.
fn cars(dir: &Path) -> anyhow::Result<Vec<PhotoCar>> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    photos.sort();
    let mut out = Vec::new();
    for photo in photos {
        let txt = photo.with_extension("txt");
        let Ok(line) = std::fs::read_to_string(&txt) else { continue };
        let plate = line
            .lines()
            .next()
            .and_then(|l| l.split('\t').nth(5))
            .map(|p| normalise_text(p, false));
        match plate {
            Some(plate) if !plate.is_empty() => {
                out.push(PhotoCar { photo: Photo::File(photo), plate })
            }
            _ => eprintln!("{}: no plate in its ground truth, left out", txt.display()),
        }
    }
    anyhow::ensure!(!out.is_empty(), "{}: no IMAGE.jpg with IMAGE.txt beside it", dir.display());
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut all = Vec::new();
    for d in &a.dirs {
        all.extend(cars(d)?);
    }
    let mut plan = PhotoPlan {
        width: a.width,
        height: a.height,
        hold_ms: a.hold_ms,
        gap_ms: a.gap_ms,
        ..PhotoPlan::default()
    };
    plan.encoding.fps = a.fps;
    plan.encoding.keyframe_every = ((a.keyframe_s * a.fps as f32).round() as u32).max(1);
    plan.encoding.bitrate_kbps = a.bitrate_kbps;
    let passes = make_photo_video(&a.out, &all, &plan)?;
    let list = a.expected.unwrap_or_else(|| a.out.with_extension("csv"));
    std::fs::write(&list, expected_csv(&passes))?;
    eprintln!("{}: {} cars; passes in {}", a.out.display(), passes.len(), list.display());
    Ok(())
}
