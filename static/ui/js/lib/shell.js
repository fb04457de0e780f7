// Behaviour shared by every page: the tenant switcher submits on change; "/" focuses the page's search.
const switcher = document.getElementById("tenant-switcher");
const select = document.getElementById("tenant-select");
if (switcher && select) select.addEventListener("change", () => switcher.requestSubmit());

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.target.closest("input, textarea, select, [contenteditable]")) return;
  const search = document.querySelector("[data-search]");
  if (search) {
    event.preventDefault();
    search.focus();
  }
});
