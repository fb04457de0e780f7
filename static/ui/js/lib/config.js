// The page's facts from the server (ollystack/ui/pages.py): tenant, role, canWrite, and per-page values.
export const config = JSON.parse(document.getElementById("olly-config")?.textContent || "{}");
