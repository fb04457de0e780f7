// Dashboards list: "New dashboard" (editors) creates an empty one through the API and opens it in edit mode.
import { post } from "olly/api.js";
import { $, flash } from "olly/dom.js";
import { config } from "olly/config.js";

const toggle = $("#new-dashboard");
const form = $("#new-form");
const name = $("#new-name");

function show(open) {
  form.classList.toggle("hidden", !open);
  toggle.setAttribute("aria-expanded", String(open));
  if (open) name.focus();
  else toggle.focus();
}

toggle.addEventListener("click", () => show(form.classList.contains("hidden")));
$("#new-cancel").addEventListener("click", () => show(false));
form.addEventListener("keydown", (event) => {
  if (event.key === "Escape") show(false);
});
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const created = await post("/api/v1/dashboards", { name: name.value, panels: [] });
    const target = new URL(`/dashboards/${created.id}/`, window.location.origin);
    target.searchParams.set("tenant", config.tenant);
    target.searchParams.set("edit", "1");
    window.location.assign(target);
  } catch (error) {
    flash(error.message, "error");
    button.disabled = false;
  }
});
