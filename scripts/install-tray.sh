#!/bin/sh
# `make install-tray`: what the tray icon needs on this platform, into the venv at $1.
#
#   macOS    pystray's AppKit backend (pyobjc comes with pystray): nothing more.
#   Linux    a menu on the icon needs PyGObject (GTK 3, or AppIndicator on GNOME
#            and KDE), which PyPI ships only as source: it is built against the
#            system's GObject-introspection and cairo headers, installed here
#            with apt or dnf when they are missing (with sudo when not root).
#            Without it the tray still runs on pystray's xorg backend: an icon
#            that opens the review page when clicked, with no menu.
set -eu
BIN="$1/bin"
say() { printf 'install-tray: %s\n' "$*"; }

case "$(uname -s)" in
Darwin)
    "$BIN/python" -m pip install --quiet pystray
    say "pystray installed (AppKit backend); nothing else is needed on macOS"
    exit 0 ;;
Linux) ;;
*)
    say "$(uname -s): pystray only; see README.md 'Tray'"
    exit 0 ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! pkg-config --exists gobject-introspection-1.0 cairo 2>/dev/null; then
    if command -v apt-get >/dev/null 2>&1; then
        pkgs="libgirepository1.0-dev libcairo2-dev pkg-config gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1"
        say "installing the build headers PyGObject needs: $sudo apt-get install $pkgs"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
    elif command -v dnf >/dev/null 2>&1; then
        pkgs="gobject-introspection-devel cairo-gobject-devel pkgconf-pkg-config gtk3 libayatana-appindicator-gtk3"
        say "installing the build headers PyGObject needs: $sudo dnf install $pkgs"
        $sudo dnf install -y -q $pkgs
    else
        say "cannot install GObject-introspection and cairo headers on this system by myself;"
        say "install them (and GTK 3), then run make install-tray again. The tray works without"
        say "them on the xorg backend (no menu)."
        exit 1
    fi
fi
# PyGObject 3.51 and later build against girepository-2.0 (GLib 2.80 and later);
# older distributions (Debian 12, Ubuntu 22.04) have only girepository-1.0.
if pkg-config --exists girepository-2.0 2>/dev/null; then spec="PyGObject"; else spec="PyGObject<3.51"; fi
say "building $spec into $1 (a minute or two) ..."
"$BIN/python" -m pip install --quiet "$spec"
"$BIN/python" -c "import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk" \
    && say "done: PyGObject $("$BIN/python" -c 'import gi; print(gi.__version__)') with GTK 3; \`starsort tray\` has its menu"
