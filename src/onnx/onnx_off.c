/* onnx_off.c — the ONNX calls of a build without protobuf-c, protoc-c or libonnx-dev
 * (CMakeLists.txt): each fails saying what the build lacks. */
#include <string.h>

#include "../core/core_impl.h"

#define CN_ONNX_OFF "this convnet was built without ONNX support (install protobuf-c-compiler, libprotobuf-c-dev and libonnx-dev, then build again)"

int cn_onnx_available(void) { return 0; }

cn_status cn_onnx_export(cn_ctx *ctx, const cn_net *net, const cn_kv *meta, int n_meta, const char *path)
{
    (void)net, (void)meta, (void)n_meta, (void)path;
    return cn_fail(ctx, CN_E_UNSUPPORTED, CN_ONNX_OFF);
}

cn_status cn_onnx_import(cn_ctx *ctx, const void *data, size_t len, const char *file,
                         const cn_onnx_import_options *opt, cn_onnx_imported *out)
{
    (void)data, (void)len, (void)file, (void)opt;
    if (out) memset(out, 0, sizeof *out);
    return cn_fail(ctx, CN_E_UNSUPPORTED, CN_ONNX_OFF);
}

void cn_onnx_imported_free(cn_ctx *ctx, cn_onnx_imported *r) { (void)ctx, (void)r; }
