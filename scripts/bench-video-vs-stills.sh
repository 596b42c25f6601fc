#!/usr/bin/env bash
# Video against stills on the same cars, in one run: for each set, `bench-alpr` on its photos and
# `bench-capture` on the video `make photo-videos` made of them. Ends with one JSON line:
# `stills_exact_SET`, `video_exact_SET`, `video_reads_SET`, `video_passes_SET` per set.
set -euo pipefail
data=$1
shift
bin=${CARGO_TARGET_DIR:-target}/release
line='{}'
for set in "$@"; do
  stills=$("$bin/bench-alpr" "$data/$set" | tail -1)
  video=$("$bin/bench-capture" --expected "bench-videos/photos-$set.csv" "bench-videos/photos-$set.mp4" | tail -1)
  echo "$set stills: $stills" >&2
  echo "$set video: $video" >&2
  key=${set//-/_}
  line=$(jq -c --arg k "$key" --argjson s "$stills" --argjson v "$video" \
    '. + {("stills_exact_" + $k): $s.exact, ("video_exact_" + $k): $v.exact,
          ("video_reads_" + $k): $v.reads, ("video_passes_" + $k): $v.passes,
          ("video_cpu_s_per_min_" + $k): $v.cpu_s_per_min}' <<<"$line")
done
echo "$line"
