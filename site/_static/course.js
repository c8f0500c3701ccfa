// Search result snippets are cut from each page's text (Sphinx's Search.htmlToText). Leave out what
// the search index leaves out too (class "no-search": the folded exercise solutions).
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined" || typeof Search.htmlToText !== "function") return;
  const pageText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".no-search").forEach((element) => element.remove());
    return pageText(page.documentElement.outerHTML, anchor);
  };
});
