// Talking to the JSON API, and showing its errors.

export async function api(path, body) {
  const options =
    body === undefined
      ? {}
      : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the server cannot be reached; is `selfattention serve` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `the server answered ${response.status}`;
    throw new Error(detail);
  }
  return data;
}

export function showError(element, message) {
  element.textContent = message ? `Sorry: ${message}` : "";
  element.hidden = !message;
}
