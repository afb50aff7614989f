#!/usr/bin/env bash
# Render a glassbox report in headless Chromium: PNG screenshots, and checks that the page has no
# horizontal overflow (wide and narrow windows, the narrow contents menu open, every
# feature-dashboard card shown), no figure wider than its column, no broken images, no script
# errors, in-page links that all land, the navigation beside the page when wide and a top bar
# when narrow, and a working feature browser (search by index, next).
#
#   scripts/screenshot-report.sh REPORT.html OUT_DIR [LATENT ...]
#
# Writes OUT_DIR/report-wide.png (1280 px) and OUT_DIR/report-narrow.png (700 px) of the top of
# the page, OUT_DIR/group-NAME-wide.png and -narrow.png of each method group (the page with the
# other groups hidden), one OUT_DIR/latent-N.png per LATENT given (that card of the first
# feature dashboards, opened by its link) and OUT_DIR/checks.txt. Exits 1 when a check fails.
# Needs chromium (Debian: apt-get install -y chromium).
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
report=$(realpath "$1")
out=$2
shift 2
mkdir -p "$out"
out=$(realpath "$out")
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chrome" ]; then
    echo "no chromium found: install it (Debian: apt-get install -y chromium)" >&2
    exit 2
fi
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --mute-audio --virtual-time-budget=10000)
# Chromium sometimes keeps running after --screenshot on some hosts: a time limit per call.
run() { timeout 120 "$chrome" "${flags[@]}" "$@" 2>/dev/null; }

# A copy of the page with extra CSS in its head (headless screenshots do not scroll to an
# anchor, so a part of the page is shown by hiding the rest).
with_css() {
    python3 - "$report" "$1" "$2" <<'EOF'
import sys
page = open(sys.argv[1], encoding="utf-8").read()
open(sys.argv[2], "w", encoding="utf-8").write(page.replace("</head>", "<style>" + sys.argv[3] + "</style></head>", 1))
EOF
}

run --window-size=1280,3200 --screenshot="$out/report-wide.png" "file://$report"
run --window-size=700,3200 --screenshot="$out/report-narrow.png" "file://$report"
part="$out/.part.html"
for group in $(grep -o 'class="group" id="group-[a-z]*"' "$report" | sed 's/.*id="group-//; s/"//'); do
    with_css "$part" ".top,#overview{display:none}section.group:not(#group-$group){display:none}"
    run --window-size=1280,3200 --screenshot="$out/group-$group-wide.png" "file://$part"
    run --window-size=700,3200 --screenshot="$out/group-$group-narrow.png" "file://$part"
done
for latent in "$@"; do
    with_css "$part" ".top,#overview,section.group:not(:has(#fd-0)),section.run:not(:has(#fd-0)){display:none}"
    run --window-size=1280,3200 --screenshot="$out/latent-$latent.png" "file://$part#fd-0-$latent"
done
rm -f "$part"

# The checks run in a copy of the page with a probe script: one to record script errors before
# anything else runs, one after the page's own scripts. Results land in <pre id="gb-check">.
probe="$out/.probe.html"
python3 - "$report" "$probe" <<'EOF'
import sys
page = open(sys.argv[1], encoding="utf-8").read()
catch = "<script>window.__errs=[];addEventListener('error',function(e){__errs.push(String(e.message))});</script>"
check = r"""<script>addEventListener('load',function(){
var lines=[],W=document.documentElement.clientWidth;
function overflow(label){var sw=document.documentElement.scrollWidth;
 lines.push((sw>W?'FAIL':'ok')+' overflow '+label+': scrollWidth '+sw+' clientWidth '+W);
 if(sw>W){[].slice.call(document.body.querySelectorAll('*')).filter(function(e){return e.getBoundingClientRect().right>W+1})
  .slice(-5).forEach(function(e){lines.push('   wide: '+e.tagName.toLowerCase()+'.'+e.className+' right='+Math.round(e.getBoundingClientRect().right))});}}
overflow('as opened');
var main=document.querySelector('main'),nav=document.querySelector('nav.toc');
if(main){var right=main.getBoundingClientRect().right+1,figs=[].slice.call(document.querySelectorAll('figure'));
 var wide=figs.filter(function(f){return f.getBoundingClientRect().right>right||f.scrollWidth>f.clientWidth+1});
 lines.push((wide.length?'FAIL':'ok')+' figures: '+figs.length+' figures, '+wide.length+' wider than the page column');
 wide.slice(0,5).forEach(function(f){lines.push('   wide: '+(f.querySelector('.file')||f).textContent.slice(0,60))});}
var links=[].slice.call(document.querySelectorAll('a[href^="#"]')),lost=links.filter(function(a){var id=decodeURIComponent(a.getAttribute('href').slice(1));return id&&!document.getElementById(id)});
lines.push((lost.length?'FAIL':'ok')+' links: '+links.length+' in-page links, '+lost.length+' without a target'+(lost.length?' ('+lost.slice(0,5).map(function(a){return a.getAttribute('href')}).join(' ')+')':''));
if(nav&&main){var n=nav.getBoundingClientRect(),m=main.getBoundingClientRect(),list=nav.querySelector('.toc-list'),toggle=nav.querySelector('.toc-toggle');
 var shown=function(){return list&&list.getBoundingClientRect().height>0};
 if(W>860){lines.push((n.right<=m.left+1&&getComputedStyle(nav).position==='sticky'&&shown()?'ok':'FAIL')+' navigation: sticky sidebar beside the page ('+Math.round(n.width)+' px), contents shown');}
 else{lines.push((n.bottom<=m.top+1&&n.height<80&&getComputedStyle(nav).position==='sticky'&&!shown()?'ok':'FAIL')+' navigation: sticky top bar above the page ('+Math.round(n.height)+' px high), contents folded');
  if(toggle){toggle.checked=true;lines.push((shown()?'ok':'FAIL')+' navigation: the contents open from the top bar');overflow('with the contents open');toggle.checked=false;}}}
else lines.push('FAIL navigation: no nav.toc beside a main');
var roots=document.querySelectorAll('.fd');
roots.forEach(function(root,r){
 var cards=[].slice.call(root.querySelectorAll('.fd-card')),search=root.querySelector('.fd-search');
 var shown=function(){return cards.filter(function(c){return !c.hidden})};
 lines.push((shown().length===1?'ok':'FAIL')+' browser '+r+': '+shown().length+' of '+cards.length+' cards shown at start');
 if(cards.length>1){
  var want=cards[cards.length-1];search.value=want.dataset.latent;search.dispatchEvent(new Event('input'));
  lines.push((shown()[0]===want?'ok':'FAIL')+' browser '+r+': search for latent '+want.dataset.latent);
  search.value='';search.dispatchEvent(new Event('input'));
  var before=shown()[0];root.querySelector('.fd-next').click();
  lines.push((shown()[0]!==before&&shown().length===1?'ok':'FAIL')+' browser '+r+': next moves to another card');}
 cards.forEach(function(c){c.hidden=false});});
if(roots.length)overflow('with every card shown');
var broken=[].slice.call(document.images).filter(function(i){return !i.complete||i.naturalWidth===0});
lines.push((broken.length?'FAIL':'ok')+' images: '+document.images.length+' images, '+broken.length+' broken');
var external=[].slice.call(document.querySelectorAll('[src],[href]')).map(function(e){return e.getAttribute('src')||e.getAttribute('href')}).filter(function(u){return /^(https?:)?\/\//.test(u)});
lines.push((external.length?'FAIL':'ok')+' self-contained: '+external.length+' external references');
lines.push((window.__errs.length?'FAIL':'ok')+' script errors: '+(window.__errs.join(' | ')||'none'));
var pre=document.createElement('pre');pre.id='gb-check';pre.textContent=lines.join('\n');document.body.appendChild(pre);});</script>"""
page = page.replace("<head>", "<head>" + catch, 1).replace("</body>", check + "</body>", 1)
open(sys.argv[2], "w", encoding="utf-8").write(page)
EOF
status=0
for width in 1280 700; do
    run --window-size=$width,3200 --dump-dom "file://$probe" |
        python3 -c 'import sys,re,html; m=re.search(r"<pre id=\"gb-check\">(.*?)</pre>", sys.stdin.read(), re.S); print(html.unescape(m.group(1)) if m else "FAIL no check output (page did not load?)")' |
        sed "s/^/[$width px] /"
done | tee "$out/checks.txt"
rm -f "$probe"
grep -q FAIL "$out/checks.txt" && status=1
echo "screenshots in $out: $(cd "$out" && ls *.png | tr '\n' ' ')"
exit $status
