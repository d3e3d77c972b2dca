# Install rules and the QOpt CMake package. `cmake --install build --prefix P` puts into P:
#   include/   qopt/ (public C++ headers), qrt.h, the generated .h.inc and the .td files (dialects/, passes/)
#   lib/       the libraries, and lib/cmake/QOpt/ with QOptConfig.cmake, its version file and QOptTargets.cmake
#   bin/       qopt, qopt-opt, qrun
# find_package(QOpt CONFIG) then gives the imported targets
#   QOpt::Runtime   the standalone runtime (qrt.h); needs no MLIR, LLVM or protobuf
#   QOpt::Dialects  the nn, qnt and kern dialects
#   QOpt::Passes    every qopt pass and pipeline, qopt::registerAllPasses/registerAllDialects (with Dialects)
#   QOpt::Import    the ONNX importer (qopt/Import/OnnxImporter.h)
#   QOpt::Serialize model.bin writing (qopt/Serialize/ModelWriter.h)
# with their MLIR and ONNX dependencies found through find_dependency. They are also the package's components:
# find_package(QOpt CONFIG COMPONENTS Runtime) loads the runtime alone and needs no MLIR or ONNX on the machine.
# A runtime-only build (QOPT_BUILD_COMPILER=OFF) installs QOpt::Runtime alone.
include(CMakePackageConfigHelpers)

set(QOPT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/QOpt)

# Umbrella targets, usable in-tree too.
add_library(QOptRuntime INTERFACE)
target_link_libraries(QOptRuntime INTERFACE qrt)
set_target_properties(QOptRuntime PROPERTIES EXPORT_NAME Runtime)
add_library(QOpt::Runtime ALIAS QOptRuntime)
set(qopt_export_targets QOptRuntime qrt QOptFormat QOptNumerics)

if(QOPT_BUILD_COMPILER)
  add_library(QOptDialects INTERFACE)
  target_link_libraries(QOptDialects INTERFACE QOptNN QOptQnt QOptKern)
  # Consumers include qopt's headers, which include MLIR's and the generated .h.inc under include/.
  target_include_directories(QOptDialects INTERFACE
                             $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include;${PROJECT_BINARY_DIR};${PROJECT_SOURCE_DIR}>
                             $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  add_library(QOptPassesAll INTERFACE)
  target_link_libraries(QOptPassesAll INTERFACE QOptPasses QOptDialects)
  add_library(QOptImportAll INTERFACE)
  target_link_libraries(QOptImportAll INTERFACE QOptImport QOptDialects)
  add_library(QOptSerializeAll INTERFACE)
  target_link_libraries(QOptSerializeAll INTERFACE QOptSerialize QOptDialects)
  set_target_properties(QOptDialects PROPERTIES EXPORT_NAME Dialects)
  set_target_properties(QOptPassesAll PROPERTIES EXPORT_NAME Passes)
  set_target_properties(QOptImportAll PROPERTIES EXPORT_NAME Import)
  set_target_properties(QOptSerializeAll PROPERTIES EXPORT_NAME Serialize)
  list(APPEND qopt_export_targets QOptDialects QOptPassesAll QOptImportAll QOptSerializeAll
       QOptNN QOptQnt QOptKern QOptPasses QOptImport QOptSerialize QOptCodegen qrtTools)
  foreach(lib QOptNN QOptQnt QOptKern QOptPasses QOptImport QOptSerialize QOptCodegen)
    set_target_properties(${lib} PROPERTIES EXPORT_NAME ${lib})
  endforeach()
endif()

# Two export sets, so that find_package(QOpt COMPONENTS Runtime) needs neither MLIR nor ONNX.
install(TARGETS QOptRuntime qrt QOptFormat QOptNumerics EXPORT QOptRuntimeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT QOptRuntimeTargets NAMESPACE QOpt:: DESTINATION ${QOPT_INSTALL_CMAKEDIR})
if(QOPT_BUILD_COMPILER)
  list(REMOVE_ITEM qopt_export_targets QOptRuntime qrt QOptFormat QOptNumerics)
  install(TARGETS ${qopt_export_targets} EXPORT QOptCompilerTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT QOptCompilerTargets NAMESPACE QOpt:: DESTINATION ${QOPT_INSTALL_CMAKEDIR})
endif()

# Headers: the runtime's C API and the format/numerics headers always; the compiler's with it.
install(FILES ${PROJECT_SOURCE_DIR}/runtime/include/qrt.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/lib/Format/include/ ${PROJECT_SOURCE_DIR}/lib/Numerics/include/
                  ${PROJECT_SOURCE_DIR}/lib/Codegen/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
if(QOPT_BUILD_COMPILER)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h")
  # TableGen sources next to the generated declarations they produce, so out-of-tree dialects can include them.
  foreach(dir dialects passes)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${dir}
            FILES_MATCHING PATTERN "*.td")
    install(DIRECTORY ${PROJECT_BINARY_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${dir}
            FILES_MATCHING PATTERN "*.h.inc" PATTERN "CMakeFiles" EXCLUDE)
  endforeach()
endif()

set(QOPT_HAS_COMPILER ${QOPT_BUILD_COMPILER})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/QOptConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cmake/QOptConfig.cmake
                              INSTALL_DESTINATION ${QOPT_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/QOptConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/QOptConfig.cmake ${PROJECT_BINARY_DIR}/cmake/QOptConfigVersion.cmake
        DESTINATION ${QOPT_INSTALL_CMAKEDIR})
