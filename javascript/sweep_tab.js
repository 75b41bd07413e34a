/* sd-webui-sweep: the Sweeps tab. The viewer (in a frame) calls sdSweepSendInfotext(text, tab):
   the infotext goes into the tab's hidden textbox and its paste button (registered with the
   WebUI's infotext_utils, like PNG Info's) fills the tab and switches to it. */
window.sdSweepSendInfotext = function (text, tab) {
    const app = typeof gradioApp === "function" ? gradioApp() : document;
    const box = app.querySelector("#sd_sweep_infotext textarea");
    const button = app.querySelector("#sd_sweep_send_" + tab);
    if (!box || !button) return false;
    box.value = text;
    if (typeof updateInput === "function") updateInput(box);
    else box.dispatchEvent(new Event("input", { bubbles: true }));
    button.click();
    return true;
};
