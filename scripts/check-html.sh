#!/bin/sh
# check-html.sh: render a batstat HTML page in headless Chromium with the network off,
# save a screenshot, and fail when the page logs anything to the console, tries to load
# anything over the network, or refers to any other file.
#
#   scripts/check-html.sh PAGE.html [SCREENSHOT.png]
#
# SCREENSHOT defaults to PAGE with .png for .html; CHECK_HTML_HEIGHT sets the height of
# the window shot (default 2400 px, width 1280). CHROMIUM names the browser binary
# (default: the first of chromium, chromium-browser, google-chrome on PATH).
#
# Exit status: 0 the page passed, or no Chromium was found (the check is skipped, with a
# message saying so); 1 the page failed; 2 bad usage. The script installs nothing
# (Debian: apt-get install chromium).
#
# How: Chromium runs with a proxy that refuses every connection and a resolver that
# resolves no name, so nothing leaves the machine; its own network log still records
# every request a page starts (those whose network isolation key is the file:// page,
# which sets them apart from the browser's own background requests), and
# --enable-logging prints every console message as a CONSOLE line.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 PAGE.html [SCREENSHOT.png]" >&2
	exit 2
fi
page=$1
shot=${2:-${page%.html}.png}
height=${CHECK_HTML_HEIGHT:-2400}
if [ ! -f "$page" ]; then
	echo "check-html: $page: no such file" >&2
	exit 2
fi

browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
	for b in chromium chromium-browser google-chrome; do
		if command -v "$b" >/dev/null 2>&1; then
			browser=$b
			break
		fi
	done
fi
if [ -z "$browser" ]; then
	echo "check-html: SKIPPED: no Chromium on PATH (Debian: apt-get install chromium); $page was not checked" >&2
	exit 0
fi

abs=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
case $abs in
*[!A-Za-z0-9/._-]*)
	echo "check-html: $abs: use a path of letters, digits and ./_- only (it becomes a file:// URL)" >&2
	exit 2
	;;
esac
url=file://$abs

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# chrome runs the browser once: $1 names its logs, the rest are extra flags.
chrome() {
	name=$1
	shift
	timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --no-default-browser-check --disable-background-networking \
		--disable-component-update --disable-sync --disable-default-apps --disable-extensions \
		--user-data-dir="$tmp/profile-$name" \
		--proxy-server=127.0.0.1:9 --host-resolver-rules='MAP * ~NOTFOUND' \
		--enable-logging=stderr --log-level=0 --log-net-log="$tmp/net-$name.json" \
		"$@" "$url" 2>"$tmp/log-$name.txt"
}

fail=0
if ! chrome shot --window-size=1280,"$height" --hide-scrollbars --screenshot="$shot" >/dev/null; then
	echo "check-html: Chromium failed to take the screenshot:" >&2
	grep -v -e dbus -e Floss "$tmp/log-shot.txt" | tail -20 >&2
	exit 1
fi
if [ ! -s "$shot" ]; then
	echo "check-html: Chromium wrote no screenshot to $shot" >&2
	exit 1
fi
if ! chrome dom --dump-dom >"$tmp/dom.html"; then
	echo "check-html: Chromium failed to render the page:" >&2
	grep -v -e dbus -e Floss "$tmp/log-dom.txt" | tail -20 >&2
	exit 1
fi

if grep -h ':CONSOLE' "$tmp"/log-*.txt >"$tmp/console.txt"; then
	echo "check-html: the page wrote to the console:" >&2
	cat "$tmp/console.txt" >&2
	fail=1
fi
grep -h '"network_isolation_key":"file://' "$tmp"/net-*.json | grep -o '"url":"[^"]*"' | sort -u >"$tmp/requests.txt" || true
if [ -s "$tmp/requests.txt" ]; then
	echo "check-html: the page asked the network for:" >&2
	cat "$tmp/requests.txt" >&2
	fail=1
fi
# What the network log cannot see: references to other local files, and markup that
# would load something. In the serialised DOM, text has its "<" escaped, so these match
# markup only, not a campaign name that looks like markup.
{
	grep -o -i -E '<(script|link|iframe|frame|object|embed|img|image|use|audio|video|source)[[:space:]>/]' "$tmp/dom.html" || true
	grep -o -i -E '<[a-z][^>]*[[:space:]](src|href|xlink:href|srcset|poster|action|formaction|background)="[^"]*"' "$tmp/dom.html" || true
	grep -o -i -E '<[a-z][^>]*[[:space:]]style="[^"]*(url\(|@import)' "$tmp/dom.html" || true
	sed -n '/<style[ >]/,/<\/style>/p' "$tmp/dom.html" | grep -o -i -E 'url\(|@import|@font-face' || true
} | sort -u >"$tmp/refs.txt"
if [ -s "$tmp/refs.txt" ]; then
	echo "check-html: the rendered page refers to other resources:" >&2
	cat "$tmp/refs.txt" >&2
	fail=1
fi
if ! grep -q '<svg' "$tmp/dom.html"; then
	# A selection without messages has no chart; anything else should.
	echo "check-html: note: the rendered page has no chart (no <svg>)" >&2
fi

if [ $fail -ne 0 ]; then
	exit 1
fi
echo "check-html: ok: $page rendered offline with no console message and no request; screenshot $shot"
