/* mirrors javascript/ui.js and javascript/token-counters.js of WebUI v1.10.1: what the paste
   buttons' JS steps call (a stand-in for tests) */
function stubSelectTopTab(index) {
    gradioApp().querySelector("#tabs").querySelectorAll("button")[index].click();
}

function switch_to_txt2img() {
    stubSelectTopTab(0);
    return Array.from(arguments);
}

function switch_to_img2img() {
    stubSelectTopTab(1);
    return Array.from(arguments);
}

function updateInput(target) {
    const event = new Event("input", { bubbles: true });
    Object.defineProperty(event, "target", { value: target });
    target.dispatchEvent(event);
}

function recalculate_prompts_txt2img() {
    return Array.from(arguments);
}

function recalculate_prompts_img2img() {
    return Array.from(arguments);
}
