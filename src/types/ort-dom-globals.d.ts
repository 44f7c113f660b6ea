/**
 * onnxruntime-common's typings mention browser types (WebGL, ImageData, …) in APIs a Node build never
 * calls. The project compiles with lib ES2022 and skipLibCheck off, so declare them as opaque here
 * instead of pulling in lib.dom.
 */
interface WebGLRenderingContext { readonly __brand_WebGLRenderingContext: never }
interface WebGLTexture { readonly __brand_WebGLTexture: never }
interface ImageData { readonly __brand_ImageData: never }
interface HTMLImageElement { readonly __brand_HTMLImageElement: never }
interface ImageBitmap { readonly __brand_ImageBitmap: never }
