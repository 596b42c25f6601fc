//! The locations drawn on a map the server makes itself, with no outside service: the listed
//! places as numbered points over a grid of latitude and longitude, Minnesota's outline (a
//! coarse one, shipped here) where it falls in view, and a scale bar. Each number matches a
//! row of the table, whose links open the place on OpenStreetMap.
use maud::{Markup, html};
use trailer_wire::console::PublicLocation;

/// Minnesota's border, coarsely, as (latitude, longitude): enough to show where in the state
/// the points are, never to navigate by.
const MINNESOTA: [(f64, f64); 24] = [
    (43.50, -96.45),
    (43.50, -91.22),
    (43.85, -91.27),
    (44.30, -91.87),
    (44.58, -92.32),
    (44.75, -92.80),
    (45.30, -92.75),
    (45.73, -92.88),
    (46.02, -92.29),
    (46.67, -92.29),
    (46.78, -92.10),
    (47.35, -91.27),
    (47.75, -90.40),
    (48.00, -89.49),
    (48.25, -90.80),
    (48.10, -91.70),
    (48.60, -93.30),
    (48.63, -94.60),
    (49.38, -95.15),
    (49.00, -95.15),
    (49.00, -97.23),
    (47.90, -97.00),
    (46.60, -96.80),
    (45.30, -96.45),
];

const W: f64 = 480.0;

/// A round grid step (1, 2 or 5 times a power of ten degrees) giving at most five lines.
fn grid_step(span: f64) -> f64 {
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
        .into_iter()
        .find(|step| span / step <= 5.0)
        .unwrap_or(10.0)
}

/// The map's projection: longitude scaled by the cosine of the middle latitude.
struct View {
    lat0: f64,
    lat1: f64,
    lon0: f64,
    lon1: f64,
    h: f64,
}

impl View {
    fn of(locs: &[PublicLocation]) -> View {
        let lats = locs.iter().map(|l| l.lat);
        let lons = locs.iter().map(|l| l.lon);
        let (lat_min, lat_max) =
            (lats.clone().fold(f64::MAX, f64::min), lats.fold(f64::MIN, f64::max));
        let (lon_min, lon_max) =
            (lons.clone().fold(f64::MAX, f64::min), lons.fold(f64::MIN, f64::max));
        let (clat, clon) = ((lat_min + lat_max) / 2.0, (lon_min + lon_max) / 2.0);
        // Longitude degrees scaled to latitude degrees at the middle latitude.
        let k = clat.to_radians().cos().max(0.2);
        let aspect = 0.7; // height / width
        // Wide enough for every point (and at least 2 km), with a margin round them.
        let width = ((lon_max - lon_min) * k).max((lat_max - lat_min) / aspect).max(0.02) * 1.3;
        let height = width * aspect;
        View {
            lat0: clat - height / 2.0,
            lat1: clat + height / 2.0,
            lon0: clon - width / k / 2.0,
            lon1: clon + width / k / 2.0,
            h: W * aspect,
        }
    }

    fn x(&self, lon: f64) -> f64 {
        (lon - self.lon0) / (self.lon1 - self.lon0) * W
    }

    fn y(&self, lat: f64) -> f64 {
        (self.lat1 - lat) / (self.lat1 - self.lat0) * self.h
    }
}

fn degrees(v: f64, pos: char, neg: char, step: f64) -> String {
    let places = if step >= 1.0 { 0 } else { (-step.log10()).ceil() as usize };
    format!("{:.*}°{}", places, v.abs(), if v >= 0.0 { pos } else { neg })
}

/// The map of `locs` (their order is the table's: point `i + 1` is row `i + 1`).
pub fn svg(locs: &[PublicLocation]) -> Markup {
    if locs.is_empty() {
        return html! { p { "No location to show on the map yet." } };
    }
    let v = View::of(locs);
    // About four grid lines each way, each labelled.
    let lines = |from: f64, to: f64, step: f64| -> Vec<f64> {
        ((from / step).ceil() as i64..=(to / step).floor() as i64)
            .map(|i| i as f64 * step)
            .collect()
    };
    let (lat_step, lon_step) = (grid_step(v.lat1 - v.lat0), grid_step((v.lon1 - v.lon0) * 1.6));
    let lat_lines = lines(v.lat0, v.lat1, lat_step);
    let lon_lines = lines(v.lon0, v.lon1, lon_step);
    let outline: String = MINNESOTA
        .iter()
        .enumerate()
        .map(|(i, (lat, lon))| {
            format!("{}{:.1},{:.1}", if i == 0 { "M" } else { "L" }, v.x(*lon), v.y(*lat))
        })
        .collect::<String>()
        + "Z";
    // A scale bar of a round distance, about a quarter of the width.
    let km_across = (v.lon1 - v.lon0) * 111.32 * ((v.lat0 + v.lat1) / 2.0).to_radians().cos();
    let km = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        .into_iter()
        .rfind(|d| *d <= km_across / 4.0)
        .unwrap_or(0.1);
    let bar = km / km_across * W;
    let label = if km < 1.0 { format!("{} m", (km * 1000.0) as i64) } else { format!("{km} km") };
    html! {
        figure {
            svg viewBox={ "0 0 " (W) " " (v.h) } role="img" aria-labelledby="map-t map-d" font-size="13" {
                title id="map-t" { "Map of the " (locs.len()) " listed reader locations" }
                desc id="map-d" {
                    "Numbered points over a grid of latitude and longitude and the outline of "
                    "Minnesota; the numbers match the table below."
                }
                defs { clipPath id="map-clip" { rect x="0" y="0" width=(W) height=(v.h) {} } }
                rect x="0" y="0" width=(W) height=(v.h) fill="#eef2f6" {}
                path d=(outline) fill="#ffffff" stroke="#767676" stroke-width="1.5"
                    clip-path="url(#map-clip)" {}
                @for lat in &lat_lines {
                    line x1="0" x2=(W) y1=(format!("{:.1}", v.y(*lat))) y2=(format!("{:.1}", v.y(*lat)))
                        stroke="#b8c2cc" stroke-dasharray="4 4" {}
                    text x="4" y=(format!("{:.1}", v.y(*lat) - 3.0)) { (degrees(*lat, 'N', 'S', lat_step)) }
                }
                @for lon in &lon_lines {
                    line y1="0" y2=(v.h) x1=(format!("{:.1}", v.x(*lon))) x2=(format!("{:.1}", v.x(*lon)))
                        stroke="#b8c2cc" stroke-dasharray="4 4" {}
                    text x=(format!("{:.1}", v.x(*lon) + 3.0)) y=(v.h - 4.0) { (degrees(*lon, 'E', 'W', lon_step)) }
                }
                @for (i, l) in locs.iter().enumerate() {
                    @let (x, y) = (v.x(l.lon), v.y(l.lat));
                    g.point {
                        circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="9" fill="#9a3412"
                            stroke="#ffffff" stroke-width="2" {
                            title { (i + 1) ". " (l.place) }
                        }
                        text x=(format!("{x:.1}")) y=(format!("{:.1}", y + 4.5)) text-anchor="middle"
                            fill="#ffffff" font-weight="bold" { (i + 1) }
                    }
                }
                rect x=(W - bar - 16.0) y=(v.h - 30.0) width=(format!("{bar:.1}")) height="5" fill="#1b1b1b" {}
                text x=(W - 16.0 - bar / 2.0) y=(v.h - 36.0) text-anchor="middle" { (label) }
            }
            figcaption {
                "Drawn by this server from the list below, with no outside map service. "
                "Each number is a row of the table; its link opens the place on OpenStreetMap."
            }
        }
    }
}

/// The place on OpenStreetMap.
pub fn osm(l: &PublicLocation) -> String {
    format!(
        "https://www.openstreetmap.org/?mlat={:.5}&mlon={:.5}#map=17/{:.5}/{:.5}",
        l.lat, l.lon, l.lat, l.lon
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(place: &str, lat: f64, lon: f64) -> PublicLocation {
        PublicLocation {
            reader: "t1".into(),
            place: place.into(),
            lat,
            lon,
            from: "2026-11-01".into(),
            until: None,
        }
    }

    /// Every location is a point inside the view, numbered as the table; grid lines are
    /// labelled; a scale bar names a round distance.
    #[test]
    fn each_location_is_a_numbered_point_in_view() {
        let tall = [at("South", 44.10, -93.99), at("North", 44.30, -93.99)];
        let v = View::of(&tall);
        for l in &tall {
            assert!((0.0..=W).contains(&v.x(l.lon)) && (0.0..=v.h).contains(&v.y(l.lat)), "{l:?}");
        }
        let locs = [at("Main & 5th", 44.1636, -93.9994), at("Hwy 14", 44.18, -93.95)];
        let svg = svg(&locs).into_string();
        assert_eq!(svg.matches("<g class=\"point\">").count(), 2, "{svg}");
        assert!(svg.contains("<title>1. Main &amp; 5th</title>"), "{svg}");
        let v = View::of(&locs);
        for l in &locs {
            assert!((0.0..=W).contains(&v.x(l.lon)) && (0.0..=v.h).contains(&v.y(l.lat)));
        }
        assert!(svg.contains("°N") && svg.contains("°W"), "{svg}");
        assert!(svg.contains(" km<") || svg.contains(" m<"), "{svg}");
        assert!(osm(&locs[0]).contains("mlat=44.16360&mlon=-93.99940"));
        assert!(super::svg(&[]).into_string().contains("No location"), "no map of nothing");
    }

    #[test]
    fn grid_steps_are_round() {
        for (span, want) in [(0.014, 0.005), (0.03, 0.01), (0.3, 0.1), (3.0, 1.0)] {
            assert_eq!(grid_step(span), want, "{span}");
        }
    }
}
