// sd-webui-sweep page helpers: hints only. Validation, cell counts and the spec text are computed
// by the server (the summary under the spec box updates as the axes change).
(function () {
    const hints = {
        "Add axis": "Show one more axis row (up to 8)",
        "Remove last axis": "Hide and clear the last axis row",
        "Load spec into rows": "Fill the axis rows, prompt-matrix options and layout from the spec text",
    };
    function addHints() {
        const app = typeof gradioApp === "function" ? gradioApp() : document;
        app.querySelectorAll("[id^='script_txt2img_sweep_'] button, [id^='script_img2img_sweep_'] button").forEach((b) => {
            const text = (b.textContent || "").trim();
            if (hints[text] && !b.title) b.title = hints[text];
            if (text === "\u{1F4D2}" && !b.title) b.title = "Fill in every value the WebUI offers for this parameter";
        });
    }
    if (typeof onUiLoaded === "function") onUiLoaded(addHints);
})();
