// A field marked data-select-on-click selects its whole text when clicked (a secret to copy).
document.querySelectorAll("[data-select-on-click]").forEach((field) => {
  field.addEventListener("click", () => field.select());
});
