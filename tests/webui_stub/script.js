/* mirrors script.js of WebUI v1.10.1: gradioApp, onUiLoaded, onUiUpdate, onAfterUiUpdate (a stand-in for tests) */
function gradioApp() {
    const app = document.querySelector("gradio-app");
    if (!app) return document;
    return app.shadowRoot || app;
}

const stubCallbacks = { loaded: [], update: [], after: [] };

function onUiLoaded(callback) {
    stubCallbacks.loaded.push(callback);
}

function onUiUpdate(callback) {
    stubCallbacks.update.push(callback);
}

function onAfterUiUpdate(callback) {
    stubCallbacks.after.push(callback);
}

(function () {
    function run(list, arg) {
        for (const callback of list) {
            try {
                callback(arg);
            } catch (e) {
                console.error("callback failed", e);
            }
        }
    }
    let loaded = false;
    let later = null;
    /* the WebUI calls the "loaded" callbacks once the txt2img prompt box exists */
    new MutationObserver(function (records) {
        if (!loaded && gradioApp().querySelector("#txt2img_prompt")) {
            loaded = true;
            run(stubCallbacks.loaded);
        }
        run(stubCallbacks.update, records);
        clearTimeout(later);
        later = setTimeout(() => run(stubCallbacks.after), 200);
    }).observe(document.documentElement, { childList: true, subtree: true });
})();
