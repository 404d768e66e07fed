#include "booking_pages.hpp"

namespace floodgate::demo {

namespace {

constexpr std::string_view style = R"(<style>
:root{--ink:#1d1b2f;--muted:#5f5b7a;--brand:#7a1f3d;--brand2:#b8860b;--bg:#f7f4ef;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI","Apple SD Gothic Neo","Noto Sans KR",sans-serif;color:var(--ink);background:var(--bg)}
header{background:linear-gradient(135deg,var(--brand),#3b0f2a);color:#fff;padding:1.2rem 1rem}
header a{color:#fff;text-decoration:none}
header .name{font-size:1.35rem;font-weight:700;letter-spacing:.02em}
header .ko{opacity:.8;font-size:.95rem;margin-left:.4rem}
main{max-width:46rem;margin:0 auto;padding:1.25rem 1rem 3rem}
.hero{background:var(--card);border-radius:14px;padding:1.5rem;box-shadow:0 2px 12px rgba(0,0,0,.06)}
.hero h1{margin:.1rem 0 .5rem;font-size:1.6rem}
.btn{display:inline-block;background:var(--brand);color:#fff;border:0;border-radius:999px;padding:.75rem 1.5rem;font-size:1rem;font-weight:600;text-decoration:none;cursor:pointer}
.btn:disabled{opacity:.5;cursor:wait}
.muted{color:var(--muted)}
ul.slots{list-style:none;padding:0;margin:1rem 0}
ul.slots li{background:var(--card);border-radius:12px;margin:.6rem 0;box-shadow:0 1px 6px rgba(0,0,0,.05)}
ul.slots label{display:flex;gap:.8rem;align-items:center;padding:.9rem 1rem;cursor:pointer}
ul.slots .when{font-weight:700;min-width:8.5rem}
ul.slots .what{flex:1}
ul.slots .left{font-size:.9rem;color:var(--muted);white-space:nowrap}
ul.slots .soldout{opacity:.55}
.field{margin:1rem 0}
.field input{width:100%;padding:.7rem;border:1px solid #cfc9bd;border-radius:8px;font-size:1rem}
.notice{border-radius:12px;padding:1rem;margin:1rem 0;background:#eaf6ee;border:1px solid #b9e0c4}
.notice.err{background:#fdecec;border-color:#f3b9b9}
footer{color:var(--muted);font-size:.85rem;text-align:center;padding:2rem 1rem}
@media (max-width:520px){ul.slots label{flex-wrap:wrap}ul.slots .when{min-width:0}}
</style>)";

std::string page(std::string_view title, std::string_view body) {
    std::string out;
    out.reserve(4096 + body.size());
    out += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
           "<title>";
    out += title;
    out += " · Seoul Concert Hall</title>";
    out += style;
    out += "</head><body><header><a href=\"/\"><span class=\"name\">Seoul Concert Hall</span>"
           "<span class=\"ko\">서울 콘서트홀</span></a></header><main>";
    out += body;
    out += "</main><footer>A demo site for Floodgate. No real tickets are sold here.</footer>"
           "</body></html>\n";
    return out;
}

}  // namespace

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string home_page() {
    return page("Autumn season", R"(<section class="hero">
<p class="muted">Autumn season 2025 · 가을 시즌</p>
<h1>Six evenings of music in the heart of Seoul</h1>
<p>Mahler and Beethoven with the Seoul Philharmonic, new music for gayageum and strings,
a family matinee and a night of big-band jazz. Booking opens today at 10:00 KST;
seats are limited to one per person.</p>
<p><a class="btn" href="/reserve">Book seats</a></p>
</section>
<section>
<h2>Visiting</h2>
<p class="muted">Main Hall, 2,000 seats. Doors open 45 minutes before each performance.
Subway line 3, exit 5.</p>
</section>)");
}

std::string reserve_page(const std::vector<performance>& programme) {
    std::string body = R"(<h1>Book a seat</h1>
<p class="muted">Choose a performance, enter your name and confirm. One seat per booking.</p>
<form id="book" method="post" action="/api/reserve"><ul class="slots">)";
    bool first = true;
    for (const auto& p : programme) {
        const bool sold_out = p.remaining == 0;
        body += sold_out ? "<li class=\"soldout\">" : "<li>";
        body += "<label><input type=\"radio\" name=\"slot\" value=\"" + html_escape(p.id) + "\"";
        if (sold_out) body += " disabled";
        else if (first) body += " checked", first = false;
        body += "><span class=\"when\">" + html_escape(p.time) + "</span><span class=\"what\">" +
                html_escape(p.title) + "</span><span class=\"left\" data-slot=\"" +
                html_escape(p.id) + "\">" +
                (sold_out ? std::string("sold out") : std::to_string(p.remaining) + " left") +
                "</span></label></li>";
    }
    body += R"(</ul>
<div class="field"><label for="name">Your name</label>
<input id="name" name="name" required maxlength="100" autocomplete="name"></div>
<button class="btn" type="submit">Reserve</button>
</form>
<div id="result" aria-live="polite"></div>
<script>
const form = document.getElementById('book'), out = document.getElementById('result');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = new FormData(form), btn = form.querySelector('button');
  btn.disabled = true;
  try {
    const r = await fetch('/api/reserve', {method: 'POST',
      headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
      body: JSON.stringify({slot: data.get('slot'), name: data.get('name')})});
    const j = await r.json().catch(() => ({error: 'HTTP ' + r.status}));
    out.className = 'notice' + (r.ok ? '' : ' err');
    out.textContent = r.ok
      ? 'Booked! Reservation ' + j.reservation + ' for ' + j.name + ', ' + j.time + ' (' + j.title + ').'
      : 'Sorry: ' + (j.error || ('HTTP ' + r.status));
    const s = await (await fetch('/api/slots')).json();
    for (const p of s.slots) {
      const el = document.querySelector('[data-slot="' + p.id + '"]');
      if (el) el.textContent = p.remaining ? p.remaining + ' left' : 'sold out';
    }
  } catch (err) {
    out.className = 'notice err'; out.textContent = 'Network error, please try again.';
  } finally { btn.disabled = false; }
});
</script>)";
    return page("Book a seat", body);
}

std::string confirmation_page(const reservation& r, std::string_view name) {
    return page("Booked", "<h1>You're booked</h1><div class=\"notice\"><p>Reservation <strong>" +
                              html_escape(r.id) + "</strong> for " + html_escape(name) +
                              ".</p><p>" + html_escape(r.slot.time) + " · " +
                              html_escape(r.slot.title) +
                              "</p></div><p><a href=\"/reserve\">Book another seat</a></p>");
}

std::string message_page(std::string_view heading, std::string_view message) {
    return page(heading, "<h1>" + html_escape(heading) + "</h1><div class=\"notice err\"><p>" +
                             html_escape(message) +
                             "</p></div><p><a href=\"/reserve\">Back to booking</a></p>");
}

}  // namespace floodgate::demo
