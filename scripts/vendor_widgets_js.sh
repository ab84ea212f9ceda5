#!/usr/bin/env bash
# Regenerate book/widgets_js/: the JavaScript (and fonts) that render ipywidgets in the built HTML.
#
# Why vendor them: by default myst-nb loads require.js from cdnjs and the widget manager from jsdelivr,
# so a reader (or CI) without network sees blank widget areas. _config.yml points `nb_ipywidgets_js`
# at these local copies instead. They must NOT live in _static/: Sphinx adds every file there to
# every page, which would load the widget manager twice.
#
# Usage: scripts/vendor_widgets_js.sh          (needs node/npm and access to the npm registry)
set -euo pipefail

HTML_MANAGER_VERSION="1.0.15"   # @jupyter-widgets/html-manager; its embed-amd.js renders ipywidgets 8 state
REQUIREJS_VERSION="2.3.8"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/book/widgets_js"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent \
    "@jupyter-widgets/html-manager@${HTML_MANAGER_VERSION}" "requirejs@${REQUIREJS_VERSION}"

manager="node_modules/@jupyter-widgets/html-manager"
mkdir -p "$dest"
cp node_modules/requirejs/require.js "$dest/require.js"
cp "$manager/dist/embed-amd.js" "$dest/embed-amd.js"
# Font Awesome 5, which the widget manager's CSS loads relative to its module URL; widgets_setup.js points
# require.js at _static/, so the fonts go to _static/@jupyter-widgets/html-manager/dist/. Browsers take woff2
# (or woff); the eot/ttf/svg fallbacks are left out.
fonts="$dest/@jupyter-widgets/html-manager/dist"
rm -rf "$dest/@jupyter-widgets"
mkdir -p "$fonts"
cp "$manager"/dist/*.woff2 "$manager"/dist/*.woff "$fonts/"
# Neither npm tarball ships a LICENSE file; the licenses are declared in package.json and in the
# files' headers. Write the full texts beside the files, plus the bundle's third-party notices.
test "$(node -p "require('./node_modules/requirejs/package.json').license")" = "MIT"
test "$(node -p "require('./$manager/package.json').license")" = "BSD-3-Clause"
cat > "$dest/LICENSE.requirejs" <<'LICENSE'
RequireJS (require.js), https://github.com/requirejs/requirejs

Copyright jQuery Foundation and other contributors, https://jquery.org/

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
LICENSE
cat > "$dest/LICENSE.html-manager" <<'LICENSE'
@jupyter-widgets/html-manager (embed-amd.js), https://github.com/jupyter-widgets/ipywidgets

Copyright (c) 2015 Project Jupyter Contributors
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
LICENSE
# embed-amd.js bundles jQuery, jQuery UI, Lumino and others; their notices, as npm ships them.
cp "$manager/dist/embed.js.LICENSE.txt" "$dest/THIRD_PARTY_NOTICES.embed-amd.txt"
cat > "$dest/README.md" <<README
# Vendored widget JavaScript

Generated by \`scripts/vendor_widgets_js.sh\`; do not edit by hand, except \`widgets_setup.js\`,
which is written by hand (it points require.js at these files and lets the widget manager talk to MathJax 3).

| file | package | license |
|---|---|---|
| require.js | requirejs@${REQUIREJS_VERSION} | LICENSE.requirejs (MIT) |
| embed-amd.js | @jupyter-widgets/html-manager@${HTML_MANAGER_VERSION} | LICENSE.html-manager (BSD-3-Clause); bundled code: THIRD_PARTY_NOTICES.embed-amd.txt |
| @jupyter-widgets/html-manager/dist/*.woff2, *.woff | Font Awesome 5 Free, bundled with the above | Font Awesome Free license: SIL OFL 1.1 for the fonts (https://fontawesome.com/license/free) |

They let ipywidgets outputs render in the built book without any network access
(see \`nb_ipywidgets_js\` in \`_config.yml\`).
README
ls -l "$dest"
