// できあがった Web 版と EPUB を、ネットワークを遮断したヘッドレス Chromium で開いて検査する。
// `make check-book`（tools/check_book.py の後）と .ci/run から呼ぶ。
//
// - dist/html/ の全ページを file:// で開き、file: と data: 以外へのリクエストを
//   すべて止めて数える（0 でなければ失敗）。
// - 数式: すべての .math 要素が MathJax で描画され、TeX のエラーが無い。
// - 画像（Mermaid の SVG、matplotlib の図）: すべて読み込まれる（naturalWidth > 0）。
// - Mermaid の構造図: 原稿の ```{mermaid} と同じ数の図が <img class="mermaid"> として
//   表示される（読み込まれ、幅と高さがある）。ブラウザで描く形（pre.mermaid や
//   mermaid.js）は残っていない。EPUB でも同じ数の図が PNG で読み込まれる。
// - リンク: ページ内・ページ間のリンク先のファイルとアンカーが実在する。
// - 検索: 用語集などの語で検索し、件数の表示と要約が出ること、その語を含むページが
//   すべて結果に出ること（再現率 100%）。
// - EPUB: 中身の XHTML を開き、図と数式の画像がすべて読み込まれる。
//
// 使い方: node tools/check_browser.mjs [dist]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { pathToFileURL, fileURLToPath } from "node:url";
import puppeteer from "puppeteer";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.resolve(process.argv[2] || path.join(ROOT, "dist"));
const HTML = path.join(DIST, "html");
const EPUB = path.join(DIST, "easy-transformer.epub");
const config = JSON.parse(
  fs.readFileSync(path.join(ROOT, "tools", "puppeteer-config.json"), "utf8"),
);

// 再現率を測る語（用語集の見出し語から、本文に何度も出る語を選ぶ。漢字・かな・英字、
// 2 文字の語と長い複合語を含む）
const SEARCH_TERMS = [
  "注意機構", "自己注意", "多頭注意", "クロス注意", "残差接続", "層正規化",
  "位置エンコーディング", "埋め込み", "トークン", "トークナイザ", "語彙",
  "因果マスク", "教師強制", "自己回帰", "学習率", "勾配", "損失",
  "交差エントロピー", "逆伝播", "字句解析器", "構文解析器",
  "抽象構文木", "逆ポーランド記法", "過学習", "ドロップアウト", "温度",
  "ビームサーチ", "貪欲法", "バッチ", "Transformer", "softmax", "GPT",
];

const problems = [];
const blocked = [];

function htmlFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "_static" && entry.name !== "_sources") {
        out.push(...htmlFiles(full));
      }
    } else if (/\.x?html$/.test(entry.name)) {
      out.push(full);
    }
  }
  return out.sort();
}

async function openPage(browser) {
  const page = await browser.newPage();
  // 共有の遅いマシンでも落ちないように、待ち時間は長めに取る
  page.setDefaultTimeout(120000);
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const url = request.url();
    if (url.startsWith("file:") || url.startsWith("data:") || url.startsWith("blob:")) {
      request.continue();
    } else {
      blocked.push(`${page.url()} → ${url}`);
      request.abort();
    }
  });
  page.on("pageerror", (error) => {
    problems.push(`${page.url()}: JavaScript のエラー: ${error.message}`);
  });
  return page;
}

async function waitForMath(page) {
  return page.evaluate(async () => {
    const maths = [...document.querySelectorAll(".math")];
    if (!maths.length) return { total: 0, rendered: 0, errors: 0 };
    const deadline = Date.now() + 20000;
    while (!(window.MathJax && window.MathJax.startup && window.MathJax.startup.promise)) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (window.MathJax && window.MathJax.startup) await window.MathJax.startup.promise;
    return {
      total: maths.length,
      rendered: maths.filter((m) => m.querySelector("mjx-container")).length,
      errors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    };
  });
}

async function brokenImages(page) {
  return page.evaluate(async () => {
    const images = [...document.images];
    await Promise.all(
      images.map((img) =>
        img.complete ? null : new Promise((r) => { img.onload = r; img.onerror = r; }),
      ),
    );
    return images
      .filter((img) => !(img.complete && img.naturalWidth > 0))
      .map((img) => img.getAttribute("src"));
  });
}

// 原稿の ```{mermaid} の数（付録の解答のように {include} される部品と README は除く。
// それらは単独の文書ではないので、図があれば取り込む側で数え直す必要がある）
function mermaidBlocksInSources() {
  const book = path.join(ROOT, "book");
  let count = 0;
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(book, full);
      if (entry.isDirectory()) {
        if (!["_generated", "_static", "_latex"].includes(entry.name)) walk(full);
      } else if (entry.name.endsWith(".md") && entry.name !== "README.md" && !rel.startsWith("appendix/solutions/")) {
        count += (fs.readFileSync(full, "utf8").match(/^(`{3,}|:{3,})\{mermaid\}/gm) || []).length;
      }
    }
  };
  walk(book);
  return count;
}

async function mermaidDiagrams(page) {
  return page.evaluate(() => ({
    shown: [...document.querySelectorAll("img.mermaid")].filter(
      (img) => img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0
        && img.getBoundingClientRect().height > 0,
    ).length,
    total: document.querySelectorAll("img.mermaid").length,
    formats: [...document.querySelectorAll("img.mermaid")].map((img) => img.getAttribute("src").split(".").pop()),
    clientSide: document.querySelectorAll("pre.mermaid, div.mermaid").length
      + [...document.scripts].filter((s) => /mermaid/i.test(s.src || s.textContent)).length,
  }));
}

function checkMermaid(where, found, expected, format) {
  if (found.total !== expected) {
    problems.push(`${where}: Mermaid の図 ${found.total} 個（原稿の {mermaid} は ${expected} 個）`);
  }
  if (found.shown !== found.total) {
    problems.push(`${where}: 表示されない Mermaid の図 ${found.total - found.shown} 個`);
  }
  const wrong = found.formats.filter((f) => f !== format);
  if (wrong.length) problems.push(`${where}: Mermaid の図が ${format} でない: ${wrong.join(", ")}`);
  if (found.clientSide) problems.push(`${where}: ブラウザで Mermaid を描く要素やスクリプトが ${found.clientSide} 個ある`);
}

function addMermaid(sum, found) {
  sum.shown += found.shown;
  sum.total += found.total;
  sum.formats.push(...found.formats);
  sum.clientSide += found.clientSide;
}

async function links(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("a[href]")]
      .map((a) => a.href)
      .filter((href) => href.startsWith("file:")),
  );
}

const idCache = new Map();
function idsOf(file) {
  if (!idCache.has(file)) {
    const text = fs.readFileSync(file, "utf8");
    idCache.set(file, new Set([...text.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1])));
  }
  return idCache.get(file);
}

function checkLink(from, href) {
  const url = new URL(href);
  const file = decodeURIComponent(url.pathname);
  if (!fs.existsSync(file)) return `${from}: リンク先が無い: ${href}`;
  if (fs.statSync(file).isDirectory()) return null;
  const anchor = decodeURIComponent(url.hash.slice(1));
  if (anchor && /\.x?html$/.test(file) && !idsOf(file).has(anchor)) {
    return `${from}: アンカーが無い: ${href}`;
  }
  return null;
}

async function checkHtml(browser) {
  const pages = htmlFiles(HTML);
  const page = await openPage(browser);
  let maths = 0;
  let images = 0;
  let linkCount = 0;
  const diagrams = { shown: 0, total: 0, formats: [], clientSide: 0 };
  for (const file of pages) {
    const rel = path.relative(HTML, file);
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    const math = await waitForMath(page);
    maths += math.rendered;
    if (math.rendered !== math.total || math.errors) {
      problems.push(
        `${rel}: 数式 ${math.total} 個のうち描画 ${math.rendered} 個、エラー ${math.errors} 個`,
      );
    }
    const broken = await brokenImages(page);
    images += await page.evaluate(() => document.images.length);
    for (const src of broken) problems.push(`${rel}: 画像が読み込めない: ${src}`);
    addMermaid(diagrams, await mermaidDiagrams(page));
    for (const href of await links(page)) {
      linkCount += 1;
      const problem = checkLink(rel, href);
      if (problem) problems.push(problem);
    }
  }
  await page.close();
  checkMermaid("HTML", diagrams, mermaidBlocksInSources(), "svg");
  console.log(
    `HTML（ブラウザ）: ${pages.length} ページ、数式 ${maths} 個を描画、画像 ${images} 個（うち Mermaid の図 ${diagrams.shown} 個を表示）、リンク ${linkCount} 本`,
  );
}

async function checkSearch(browser) {
  const texts = await (async () => {
    const file = path.join(HTML, "_static", "search_texts.js");
    if (!fs.existsSync(file)) {
      problems.push("検索: _static/search_texts.js が無い");
      return {};
    }
    const source = fs.readFileSync(file, "utf8");
    return JSON.parse(source.slice(source.indexOf("{"), source.indexOf(";\n")));
  })();
  const page = await openPage(browser);
  let found = 0;
  let expected = 0;
  let extra = 0;
  for (const term of SEARCH_TERMS) {
    const url = `${pathToFileURL(path.join(HTML, "search.html")).href}?q=${encodeURIComponent(term)}`;
    await page.goto(url, { waitUntil: "load" });
    try {
      await page.waitForFunction(
        () => {
          const status = document.querySelector("#search-results .search-summary");
          return status && status.textContent.trim() !== "";
        },
        { timeout: 120000 },
      );
    } catch {
      problems.push(`検索「${term}」: 結果の件数の表示が出ない`);
      continue;
    }
    // 要約（fetch の結果）がすべての結果に付くのを待つ（付かなければ下で数える）
    await page
      .waitForFunction(
        () => [...document.querySelectorAll("#search-results ul.search li")]
          .every((li) => li.querySelector("p.context")),
        { timeout: 10000 },
      )
      .catch(() => {});
    const result = await page.evaluate(() => {
      const items = [...document.querySelectorAll("#search-results ul.search li")];
      return {
        status: (document.querySelector("#search-results .search-summary") || {}).textContent || "",
        pages: [...new Set(items.map((li) => li.querySelector("a").getAttribute("href").split("#")[0]))],
        summaries: items.filter((li) => li.querySelector("p.context")).length,
        items: items.length,
      };
    });
    // その語を本文に含むページ。英数字の語は単語として（nn.TransformerEncoder の
    // 一部は数えない。索引も単語に切るので）、和文の語は部分文字列として数える
    const ascii = /^[\x00-\x7f]+$/.test(term);
    const pattern = new RegExp(ascii ? `(?<![A-Za-z0-9_])${term}(?![A-Za-z0-9_])` : term, "iu");
    const containing = Object.keys(texts).filter(
      (key) => pattern.test(texts[key]) && !["genindex.html", "search.html"].includes(key),
    );
    const hits = new Set(result.pages.map((p) => decodeURIComponent(p)));
    const missed = containing.filter((key) => !hits.has(key));
    expected += containing.length;
    found += containing.length - missed.length;
    extra += [...hits].filter((key) => !containing.includes(key)).length;
    if (!containing.length) problems.push(`検索「${term}」: 本文にこの語を含むページが無い（語の選び方を見直す）`);
    if (missed.length) problems.push(`検索「${term}」: 含むページ ${containing.length} のうち ${missed.length} ページが結果に出ない: ${missed.join(", ")}`);
    if (!/\d/.test(result.status)) problems.push(`検索「${term}」: 件数が表示されない（${result.status}）`);
    if (result.summaries < result.items) problems.push(`検索「${term}」: 要約の無い結果 ${result.items - result.summaries} 件`);
  }
  await page.close();
  const recall = expected ? found / expected : 0;
  console.log(
    `検索: ${SEARCH_TERMS.length} 語、語を含むページ ${expected} 件のうち結果に出たもの ${found} 件（再現率 ${(recall * 100).toFixed(1)}%）、語を含まないのに出たページ ${extra} 件`,
  );
}

async function checkEpub(browser) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "et-epub-"));
  execFileSync("unzip", ["-q", EPUB, "-d", dir]);
  const pages = htmlFiles(dir);
  const page = await openPage(browser);
  let images = 0;
  const diagrams = { shown: 0, total: 0, formats: [], clientSide: 0 };
  for (const file of pages) {
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    const broken = await brokenImages(page);
    images += await page.evaluate(() => document.images.length);
    for (const src of broken) problems.push(`EPUB ${path.relative(dir, file)}: 画像が読み込めない: ${src}`);
    addMermaid(diagrams, await mermaidDiagrams(page));
  }
  await page.close();
  fs.rmSync(dir, { recursive: true, force: true });
  checkMermaid("EPUB", diagrams, mermaidBlocksInSources(), "png");
  console.log(`EPUB（ブラウザ）: ${pages.length} 文書、画像（図と数式）${images} 個（うち Mermaid の図 ${diagrams.shown} 個）`);
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || config.executablePath,
  args: config.args,
  headless: true,
});
try {
  await checkHtml(browser);
  await checkSearch(browser);
  if (fs.existsSync(EPUB)) await checkEpub(browser);
  else problems.push(`EPUB が無い: ${EPUB}`);
} finally {
  await browser.close();
}
console.log(`file: 以外へのリクエスト: ${blocked.length} 件`);
for (const b of blocked.slice(0, 20)) problems.push(`外部へのリクエスト: ${b}`);
if (problems.length) {
  console.error(`問題 ${problems.length} 件:`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
