// Opens an upload link: its token sits in the URL's fragment, which browsers never send to a
// server (so it never lands in an access log). Take it, clear it from the address bar and the
// history, and post it once; the server answers with the upload page or says why it cannot.
const form = document.getElementById("link-form");
const token = decodeURIComponent(window.location.hash.slice(1));
history.replaceState(null, "", window.location.pathname);
if (token) {
  document.getElementById("link-token").value = token;
  form.submit();
} else {
  document.getElementById("link-status").textContent =
    "This address is missing its secret part. Open the whole link you were sent.";
}
