// Sortable tables: header buttons (keyboard-usable) sort rows by a key function; aria-sort shows the order.
import { h, clear } from "olly/dom.js";

// columns: [{label, key: row => sortable value, render: row => Node|string, num: bool}]
export function sortableTable(container, columns, rows, { sortBy = 0, descending = false, rowAttrs } = {}) {
  let sortIndex = sortBy;
  let desc = descending;
  const table = h("table", { class: "data" });
  const draw = () => {
    const column = columns[sortIndex];
    const sorted = [...rows].sort((a, b) => {
      const x = column.key(a);
      const y = column.key(b);
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return desc ? -order : order;
    });
    const head = h(
      "tr",
      {},
      columns.map((c, i) =>
        h(
          "th",
          { class: c.num ? "num" : "", "aria-sort": i === sortIndex ? (desc ? "descending" : "ascending") : "none" },
          c.key
            ? h("button", {
                type: "button",
                class: "sort",
                onclick: () => {
                  desc = i === sortIndex ? !desc : Boolean(c.num);
                  sortIndex = i;
                  draw();
                  // the header was redrawn: keep the keyboard where it was
                  table.querySelectorAll("th button.sort")[i]?.focus();
                },
              }, c.label)
            : c.label,
        ),
      ),
    );
    const body = sorted.map((row) =>
      h("tr", rowAttrs ? rowAttrs(row) : {}, columns.map((c) => h("td", { class: c.num ? "num" : "" }, c.render ? c.render(row) : String(c.key(row))))),
    );
    clear(table).append(h("thead", {}, head), h("tbody", {}, body));
  };
  draw();
  clear(container).append(rows.length ? table : h("div", { class: "empty" }, "Nothing in this range."));
  return table;
}
