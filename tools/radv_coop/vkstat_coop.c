// vkstat_coop: ../shared/tools/radv_stats/vkstat.c with VK_KHR_cooperative_matrix enabled (and the
// 16-bit storage, f16 and memory-model features naga's cooperative-matrix SPIR-V needs): prints the
// device's cooperative-matrix configurations, builds a compute pipeline from a SPIR-V file
// (VKSTAT_WAVE32=1: with 32-wide subgroups required) and prints its executables' statistics.
#include <vulkan/vulkan.h>
#include <stdio.h>
#include <stdlib.h>
#ifndef VK_KHR_cooperative_matrix
// Debian 12's headers (1.3.239) predate VK_KHR_cooperative_matrix (1.3.255): its two structs here
typedef struct { VkStructureType sType; void *pNext; VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess; } VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef struct { VkStructureType sType; void *pNext; uint32_t MSize, NSize, KSize; int AType, BType, CType, ResultType; VkBool32 saturatingAccumulation; int scope; } VkCooperativeMatrixPropertiesKHR;
typedef VkResult (*PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(VkPhysicalDevice, uint32_t *, VkCooperativeMatrixPropertiesKHR *);
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR ((VkStructureType)1000506000)
#define VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType)1000506001)
#endif
#define CK(x) do { VkResult r_ = (x); if (r_ != VK_SUCCESS) { fprintf(stderr, "%s failed: %d\n", #x, r_); return 1; } } while (0)
int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: vkstat file.spv entry\n"); return 2; }
  FILE *f = fopen(argv[1], "rb"); fseek(f, 0, SEEK_END); long n = ftell(f); rewind(f);
  uint32_t *code = malloc(n); fread(code, 1, n, f); fclose(f);
  VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, 0, "vkstat", 1, 0, 0, VK_API_VERSION_1_3};
  VkInstanceCreateInfo ici = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, 0, 0, &app};
  VkInstance inst; CK(vkCreateInstance(&ici, 0, &inst));
  uint32_t np = 1; VkPhysicalDevice pd; vkEnumeratePhysicalDevices(inst, &np, &pd);
  VkPhysicalDeviceProperties pp; vkGetPhysicalDeviceProperties(pd, &pp); fprintf(stderr, "device: %s\n", pp.deviceName);
  float prio = 1; VkDeviceQueueCreateInfo q = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, 0, 0, 0, 1, &prio};
  const char *ext[] = {"VK_KHR_pipeline_executable_properties", "VK_KHR_cooperative_matrix"};
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR cmf = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR, 0, VK_TRUE, VK_FALSE};
  VkPhysicalDeviceVulkan13Features v13 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES, &cmf};
  v13.subgroupSizeControl = VK_TRUE; v13.computeFullSubgroups = VK_TRUE; v13.shaderDemoteToHelperInvocation = VK_TRUE;
  VkPhysicalDeviceVulkan12Features v12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, &v13};
  v12.shaderFloat16 = VK_TRUE; v12.storageBuffer8BitAccess = VK_TRUE; v12.vulkanMemoryModel = VK_TRUE; v12.vulkanMemoryModelDeviceScope = VK_TRUE;
  VkPhysicalDeviceVulkan11Features v11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, &v12};
  v11.storageBuffer16BitAccess = VK_TRUE; v11.uniformAndStorageBuffer16BitAccess = VK_TRUE;
  VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pef = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR, &v11, VK_TRUE};
  uint32_t ncm = 0; PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR gcm = (void *)vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  if (gcm) { gcm(pd, &ncm, 0); VkCooperativeMatrixPropertiesKHR cm[32]; for (int i = 0; i < 32; i++) cm[i] = (VkCooperativeMatrixPropertiesKHR){VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR};
    if (ncm > 32) ncm = 32; gcm(pd, &ncm, cm);
    for (uint32_t i = 0; i < ncm; i++) fprintf(stderr, "coop: %ux%ux%u A%d B%d C%d R%d scope %d\n", cm[i].MSize, cm[i].NSize, cm[i].KSize, cm[i].AType, cm[i].BType, cm[i].CType, cm[i].ResultType, cm[i].scope); }
  VkDeviceCreateInfo dci = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, &pef, 0, 1, &q, 0, 0, 2, ext, 0};
  VkDevice dev; CK(vkCreateDevice(pd, &dci, 0, &dev));
  VkShaderModuleCreateInfo smi = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, 0, 0, (size_t)n, code};
  VkShaderModule sm; CK(vkCreateShaderModule(dev, &smi, 0, &sm));
  // a pipeline layout with generous descriptor sets is needed; read none: use an empty layout and rely on the shader's sets being declared
  VkDescriptorSetLayoutBinding b[16]; for (int i = 0; i < 16; i++) { b[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, 0}; }
  int nb = argc > 3 ? atoi(argv[3]) : 8; const char *kinds = argc > 4 ? argv[4] : "";
  for (int i = 0; i < nb; i++) { char k = kinds[i] ? kinds[i] : 's'; b[i].descriptorType = k == 'u' ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER : k == 't' ? VK_DESCRIPTOR_TYPE_SAMPLED_IMAGE : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER; }
  VkDescriptorSetLayoutCreateInfo dli = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, 0, 0, nb, b};
  VkDescriptorSetLayout dl; CK(vkCreateDescriptorSetLayout(dev, &dli, 0, &dl));
  VkPipelineLayoutCreateInfo pli = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, 0, 0, 1, &dl, 0, 0};
  VkPipelineLayout pl; CK(vkCreatePipelineLayout(dev, &pli, 0, &pl));
  VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rss = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO, 0, 32};
  VkComputePipelineCreateInfo cpi = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO, 0, VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR,
    {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, getenv("VKSTAT_WAVE32") ? (void *)&rss : 0, 0, VK_SHADER_STAGE_COMPUTE_BIT, sm, argv[2], 0}, pl, 0, 0};
  VkPipeline p; CK(vkCreateComputePipelines(dev, 0, 1, &cpi, 0, &p));
  PFN_vkGetPipelineExecutablePropertiesKHR gp = (void *)vkGetDeviceProcAddr(dev, "vkGetPipelineExecutablePropertiesKHR");
  PFN_vkGetPipelineExecutableStatisticsKHR gs = (void *)vkGetDeviceProcAddr(dev, "vkGetPipelineExecutableStatisticsKHR");
  VkPipelineInfoKHR pi = {VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, 0, p};
  uint32_t ne = 0; gp(dev, &pi, &ne, 0);
  VkPipelineExecutablePropertiesKHR props[8]; for (uint32_t i = 0; i < 8; i++) props[i] = (VkPipelineExecutablePropertiesKHR){VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR};
  if (ne > 8) ne = 8; gp(dev, &pi, &ne, props);
  for (uint32_t e = 0; e < ne; e++) {
    printf("executable %u: %s (subgroup %u)\n", e, props[e].name, props[e].subgroupSize);
    VkPipelineExecutableInfoKHR ei = {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR, 0, p, e};
    uint32_t ns = 0; gs(dev, &ei, &ns, 0);
    VkPipelineExecutableStatisticKHR st[64]; for (int i = 0; i < 64; i++) st[i] = (VkPipelineExecutableStatisticKHR){VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
    if (ns > 64) ns = 64; gs(dev, &ei, &ns, st);
    for (uint32_t i = 0; i < ns; i++) {
      printf("  %-28s ", st[i].name);
      switch (st[i].format) { case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: printf("%llu\n", (unsigned long long)st[i].value.u64); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: printf("%lld\n", (long long)st[i].value.i64); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR: printf("%f\n", st[i].value.f64); break;
        default: printf("%d\n", st[i].value.b32); }
    }
  }
  return 0;
}
