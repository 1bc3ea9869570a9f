// The live count of matching images, from /api/images, whenever the form changes.
const form = document.getElementById("request-form");
const count = document.getElementById("count");
async function refresh() {
  const data = new FormData(form);
  const query = new URLSearchParams({
    parks: data.getAll("parks").join(","), species: data.getAll("species").join(","),
    start_date: data.get("start_date") || "", end_date: data.get("end_date") || "",
    offset: data.get("offset") || "0", include_empties: data.get("include_empties") ? "true" : "false"});
  if (data.get("limit")) query.set("limit", data.get("limit"));
  const response = await fetch(`/api/images?${query}`);
  const body = await response.json();
  count.textContent = response.ok ? `Matching images: ${body.images}` : `Not valid: ${body.error}`;
  if (response.ok) document.getElementById("left-out").textContent = body.note;  // what the ZIP may leave out
}
form.addEventListener("change", refresh);
refresh();
