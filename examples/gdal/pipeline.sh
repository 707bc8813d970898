#!/usr/bin/env shark
# A small geospatial pipeline: a synthetic DEM, reprojected, hillshaded, sloped, summarised and
# tiled with GDAL's command-line tools. Each top-level command below is one shark step, memoized
# on the files it actually reads. Run it from this directory: `shark pipeline.sh`.
#
# Inputs: make_dem.py and dem.params (the terrain), sun.params (azimuth and altitude of the
# light for the hillshade). Outputs go to the folder given as the first argument, out/ by
# default (`shark pipeline.sh .` writes them next to the sources).
set -e

# No .aux.xml sidecars: otherwise `gdalinfo -stats` writes one next to each raster it reads, a
# side effect that makes the report step a writer of files the other steps look for (GDAL
# checks for sidecars when it opens a raster, and deletes them when it replaces one).
export GDAL_PAM_ENABLED=NO

out=${1:-out}
mkdir -p "$out"

# The synthetic terrain, as an ESRI ASCII grid in UTM zone 30N metres.
python3 make_dem.py dem.params "$out/dem.asc"

# To GeoTIFF, placed near Madrid in UTM 30N (128 cells of 30 m).
gdal_translate -q -of GTiff -co COMPRESS=DEFLATE -a_srs EPSG:32630 \
  -a_ullr 440000 4480000 443840 4476160 "$out/dem.asc" "$out/dem.tif"

# Reprojected to geographic coordinates.
gdalwarp -q -overwrite -t_srs EPSG:4326 -r bilinear -co COMPRESS=DEFLATE "$out/dem.tif" "$out/dem_4326.tif"

# Terrain derivatives. The hillshade's light comes from sun.params, read inside the step so
# that only this step (and what reads its output) depends on it.
gdaldem hillshade -q -compute_edges -az "$(cut -d' ' -f1 sun.params)" \
  -alt "$(cut -d' ' -f2 sun.params)" "$out/dem.tif" "$out/hillshade.tif"
gdaldem slope -q -compute_edges "$out/dem.tif" "$out/slope.tif"

# A statistics report of the derivatives.
{ gdalinfo -stats -nomd "$out/slope.tif"; gdalinfo -stats -nomd "$out/hillshade.tif"; } > "$out/report.txt"

# The hillshade cut into four 64 x 64 tiles, one loop step.
for t in 0 1 2 3; do
  gdal_translate -q -srcwin $((t % 2 * 64)) $((t / 2 * 64)) 64 64 "$out/hillshade.tif" "$out/tile_$t.tif"
done
